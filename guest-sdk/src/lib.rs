//! Write durable Reprise workflows in plain Rust.
//!
//! A workflow is an ordinary function whose side effects happen in *steps*. The host records
//! every step's outcome before the workflow sees it, so after a crash it re-runs the workflow
//! from the start and hands back the recorded outcomes instead of running the steps again: the
//! workflow resumes where it stopped, and each completed step ran exactly once.
//!
//! ```ignore
//! use reprise_guest::prelude::*;
//!
//! #[step(max_attempts = 5, interval_ms = 100)]
//! fn charge(order: u64) -> Result<String, String> {
//!     info!("charging order {order}");
//!     Ok(format!("receipt-{order}"))
//! }
//!
//! #[workflow]
//! fn checkout(order: u64) -> Result<String, String> {
//!     let receipt = charge(order)?; // Result<String, StepError>; `?` turns it into a String
//!     sleep(std::time::Duration::from_secs(1)); // durable: on recovery only the rest is slept
//!     Ok(receipt)
//! }
//!
//! reprise_guest::export!(workflows = [checkout], steps = [charge]);
//! ```
//!
//! # The rules a workflow follows
//!
//! * A workflow must be deterministic: re-run with the same recorded step outcomes it must call
//!   the same steps in the same order. Anything that can differ between runs (I/O, time,
//!   randomness) belongs in a step, or goes through [`now_ms`] and [`random_u64`], whose values
//!   the host records.
//! * Workflow inputs, step arguments and all outputs cross the host boundary as JSON, so they
//!   are `serde` types. A workflow with one argument takes that value as its input
//!   (`reprise run fib.wasm fib 10`); with none it ignores its input; with more it takes a
//!   JSON array of them.
//! * A workflow returns either a plain value or a `Result<T, E>` whose error `E` is anything
//!   that implements `Display`: an `Err` ends the workflow with the `ERROR` status and that
//!   message. Both `String` and this crate's [`Error`] accept a [`StepError`] and a
//!   [`ChildError`] through `?`.
//! * Step arguments are `Clone` (an inline step may run more than once: each attempt gets a
//!   fresh copy) and deserializable (the host may run any listed step on its own, from its JSON
//!   arguments); an isolated step's arguments are also serializable.
//! * Every workflow and every step the host should know of is listed in [`export!`].
//!
//! # Messages, events and streams
//!
//! A workflow waits for the world with [`recv`] (a message [`send`] or the API sent to one of
//! its topics) and [`get_event`] (another workflow's [`set_event`]), each with a timeout, and
//! reports to it with [`set_event`] and [`write_stream`]. All are recorded like steps; a long
//! wait gives back the workflow's instance until what it waits for comes.
//!
//! # Child workflows
//!
//! A workflow can start other workflows of its component as children, at once
//! ([`start_child`]) or on a queue ([`Child`]), and await their outputs through the returned
//! [`ChildHandle`]. Starting and awaiting are recorded like steps (a replay never starts a
//! child twice), so they follow the same rules: made from the workflow's body (not inside a
//! step), in a deterministic order.
//!
//! ```ignore
//! #[workflow]
//! fn fan_out(n: u32) -> Result<Vec<u64>, String> {
//!     let handles = (1..=n)
//!         .map(|i| start_child::<u64, _>("fib", &i))        // the children run concurrently
//!         .collect::<Result<Vec<_>, _>>()?;
//!     let batch: ChildHandle<String> = Child::new("publish").queue("publishers").start(&("t", 1))?;
//!     batch.result()?;                                      // Result<String, ChildError>
//!     Ok(handles.iter().map(|h| h.result()).collect::<Result<_, _>>()?)
//! }
//! ```

#![warn(missing_docs)]

mod backend;
mod child;
mod error;
pub mod http;
mod registry;
mod runtime;
#[cfg(not(target_family = "wasm"))]
pub mod testing;
mod topics;
mod waits;

/// The bindings `wit-bindgen` generates from `wit/workflow.wit`: the guest's half of the contract
/// with the host. Hidden: only [`export!`]'s expansion and this crate use them.
#[doc(hidden)]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "guest",
        // `export!` expands in the user's crate, so the export macro must be reachable from
        // there and must name the bindings by an absolute path.
        pub_export_macro: true,
        default_bindings_module: "::reprise_guest::__bindings",
    });
}

/// Items the macros' expansions use. Not part of the public API: they may change at any time.
#[doc(hidden)]
pub mod __private {
    pub use crate::__bindings::reprise::workflow::types::LogLevel;
    pub use crate::registry::{all_steps, all_workflows};
    pub use crate::runtime::{
        BodyError, StepConfig, StepDef, WorkflowDef, assert_isolated_step_arg, assert_step_arg,
        assert_step_output, assert_workflow_arg, assert_workflow_output, call_isolated_step,
        call_step, check_names, definitions, log, run_step, run_workflow, step_entry,
        workflow_input, workflow_result, workflow_value,
    };
    pub use crate::topics::{TopicDef, topic_check, topic_schema};
    pub use inventory;
    pub use schemars;
    pub use serde;
    pub use serde_json;
}

pub use child::{Child, ChildHandle, start_child};
pub use error::{ChildError, Error, MaxStepRetriesExceeded, StepError};
pub use runtime::{
    StepStatus, WorkflowInfo, continue_as_new, deprecate_patch, idempotency_key, now_ms, patched,
    random_u64, secret, sleep, step_status, workflow_info,
};
pub use topics::{Topic, Undecodable};
pub use waits::{
    Scheduled, close_stream, get_event, recv, scheduled, send, set_event, write_stream,
};

/// Registers the component's workflows and steps with the host.
///
/// ```ignore
/// reprise_guest::export!(workflows = [pipeline, other::nightly], steps = [add, flaky]);
/// ```
///
/// Every function marked [`#[workflow]`](macro@workflow) or [`#[step]`](macro@step) registers
/// itself, so both lists may be empty or omitted (`reprise_guest::export!();`): nothing can be
/// left out by mistake. Listing functions (paths work; the items must be visible where
/// `export!` is written) checks at compile time that each is marked and that no two share a
/// name, and lists them first in `reprise inspect`. Invoke it once per component, at the crate
/// root.
///
/// It implements the component's exports: `run-workflow` dispatches on the workflow's name,
/// `run-step` runs one attempt of a named step, and `definitions` lists what is registered
/// with each step's options. Duplicate names are a compile-time error.
pub use reprise_guest_macros::export;

/// Marks a function as a durable step: its outcome is recorded, and replayed after a crash.
///
/// ```ignore
/// #[step]                                                    // 3 attempts, 1000 ms, x2.0
/// #[step(max_attempts = 5, interval_ms = 100, backoff_rate = 1.5)]
/// #[step(retries = false)]                                   // a failed attempt is final
/// #[step(isolated, max_attempts = 2)]                        // own instance and memory limit
/// #[step(name = "custom-name")]                              // default: the function's name
/// ```
///
/// The function returns `Result<T, E>` with `T: Serialize + DeserializeOwned` and
/// `E: Display` (or a plain `T`, for a step that cannot fail); its arguments are
/// `Clone + DeserializeOwned` (and `Serialize` for an isolated step). The macro changes the
/// return type to `Result<T, StepError>`: calling the function asks the host whether the step
/// already has an outcome and returns it without running the body if so; otherwise it runs
/// the body (retrying failed attempts as the options say, with the host waiting the backoff)
/// and returns the outcome once the host has recorded it. The values a step returns are
/// always the recorded JSON decoded again, so a first run and a replay see the same thing.
///
/// A step called from inside another step's body runs as a plain function call (as in DBOS):
/// only the outermost step is recorded.
///
/// An `isolated` step runs in a fresh instance with its own memory limit: a trap in it (out of
/// memory, a panic) is a failed attempt instead of the death of the workflow.
pub use reprise_guest_macros::step;

/// Marks a function as a workflow the host can start by name.
///
/// ```ignore
/// #[workflow]                      // registered as the function's name
/// #[workflow(name = "nightly")]
/// ```
///
/// The function is left as it is: it can be called directly as well. Its arguments are
/// `DeserializeOwned` and its output (the `Ok` value, or the value if it does not return a
/// `Result`) is `Serialize`. An `Err(e)` ends the workflow with `e.to_string()` as its error.
/// List it in [`export!`].
pub use reprise_guest_macros::workflow;

/// Declares the type of the messages on a topic: the host then refuses any send to the topic
/// that does not match the type's JSON Schema (a 400 naming the field from the API, exit 2
/// from `reprise workflow send`, an `Err` for a sending workflow), so `recv` never meets a
/// malformed message there. Declared once per component; it holds for all its workflows.
///
/// ```ignore
/// #[topic("shipped")]
/// #[derive(Serialize, Deserialize)]
/// struct Shipped { tracking: String, carrier: Option<String> }
///
/// let shipped = Shipped::recv(Duration::from_secs(60))?;   // or recv::<Shipped>("shipped", ..)
/// Shipped { tracking: "1Z".into(), carrier: None }.send_to("order-7")?;
/// ```
///
/// The schema comes from `schemars` (re-exported by this crate: no dependency to add) and
/// follows the type's `serde` attributes. A struct or enum without generics.
pub use reprise_guest_macros::topic;

/// A `Result` whose error defaults to this crate's [`Error`], for workflows that mix errors.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Everything a workflow module needs, in one import: `use reprise_guest::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Child, ChildError, ChildHandle, Error, MaxStepRetriesExceeded, Scheduled, StepError,
        StepStatus, Topic, Undecodable, WorkflowInfo, bail, close_stream, continue_as_new, debug,
        deprecate_patch, error, get_event, idempotency_key, info, now_ms, patched, random_u64,
        recv, scheduled, send, set_event, sleep, start_child, step, step_status, topic, trace,
        warn, workflow, workflow_info, write_stream,
    };
}

/// Logs at trace level through the host's tracing, with `format!` arguments.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => {
        $crate::__private::log($crate::__private::LogLevel::Trace, &::std::format!($($arg)+))
    };
}

/// Logs at debug level through the host's tracing, with `format!` arguments.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => {
        $crate::__private::log($crate::__private::LogLevel::Debug, &::std::format!($($arg)+))
    };
}

/// Logs at info level through the host's tracing, with `format!` arguments.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => {
        $crate::__private::log($crate::__private::LogLevel::Info, &::std::format!($($arg)+))
    };
}

/// Logs at warn level through the host's tracing, with `format!` arguments.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => {
        $crate::__private::log($crate::__private::LogLevel::Warn, &::std::format!($($arg)+))
    };
}

/// Logs at error level through the host's tracing, with `format!` arguments. (To *return* an
/// error, use [`bail!`] or [`Error::msg`].)
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => {
        $crate::__private::log($crate::__private::LogLevel::Error, &::std::format!($($arg)+))
    };
}

/// Returns early with an error built from `format!` arguments: `bail!("no stock for {item}")`.
///
/// Works in any function returning `Result<_, E>` where `E: From<reprise_guest::Error>`:
/// [`Error`] itself and `String`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)+) => {
        return ::core::result::Result::Err(::core::convert::From::from(
            $crate::Error::msg(::std::format!($($arg)+)),
        ))
    };
}
