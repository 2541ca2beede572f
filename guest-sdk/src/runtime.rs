//! What the macros expand to call: the step protocol with the host (`begin-step`, `end-step`,
//! `run-isolated`), the export dispatchers, and the helpers a workflow calls directly.

use std::any::type_name;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Display;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__bindings::reprise::workflow::types::StepError as ExportStepError;
use crate::__bindings::reprise::workflow::types::{
    AttemptInfo, Definitions, LogLevel, RetryPolicy, StepDefinition, StepEnd, StepOptions,
    StepOutcome, StepStart, WorkflowError,
};
use crate::backend as durable;
use crate::error::{MaxStepRetriesExceeded, StepError};

// ---------------------------------------------------------------------------------------------
// Registration records the macros emit.

/// A step's options as `#[step(...)]` declared them; a `const` so `export!` can check names at
/// compile time.
#[derive(Debug, Clone, Copy)]
pub struct StepConfig {
    /// When false a failed attempt is final.
    pub retries_allowed: bool,
    /// Attempts including the first (at least 1).
    pub max_attempts: u32,
    /// Wait before the first retry.
    pub interval_ms: u64,
    /// Factor applied to the wait before each further retry.
    pub backoff_rate: f64,
    /// Run each attempt in a fresh instance through `run-isolated`.
    pub isolated: bool,
    /// Each attempt's time limit in milliseconds, 0 for none (set only on isolated steps).
    pub timeout_ms: u64,
}

impl StepConfig {
    /// The options in the WIT's shape, as `begin-step` and `definitions` send them.
    fn options(&self) -> StepOptions {
        StepOptions {
            retry: RetryPolicy {
                retries_allowed: self.retries_allowed,
                max_attempts: self.max_attempts,
                interval_ms: self.interval_ms,
                backoff_rate: self.backoff_rate,
            },
            isolated: self.isolated,
        }
    }
}

/// Why running a registered body from JSON produced no output; the dispatchers turn it into
/// the export's own error variant.
#[derive(Debug)]
pub enum BodyError {
    /// The input JSON did not decode into the arguments.
    InvalidInput(String),
    /// The body returned an error (or its output did not serialize).
    Failed(String),
}

/// A registered step: `#[step]` emits one as `__reprise_step_<fn>`.
#[derive(Clone, Copy)]
pub struct StepDef {
    /// The name the host records.
    pub name: &'static str,
    /// The declared options.
    pub config: StepConfig,
    /// Runs the body once from the JSON array of its arguments (the `run-step` export).
    pub run: fn(&[u8]) -> Result<Vec<u8>, BodyError>,
}

/// A registered workflow: `#[workflow]` emits one as `__reprise_workflow_<fn>`.
#[derive(Clone, Copy)]
pub struct WorkflowDef {
    /// The name the host starts it by.
    pub name: &'static str,
    /// Runs the workflow from its JSON input.
    pub run: fn(&[u8]) -> Result<Vec<u8>, BodyError>,
}

/// Fails compilation (it is evaluated in a `const`) if a workflow or step name is registered
/// twice: the host could not tell them apart.
pub const fn check_names(workflows: &[WorkflowDef], steps: &[StepDef]) {
    let mut i = 0;
    while i < workflows.len() {
        let mut j = i + 1;
        while j < workflows.len() {
            if str_eq(workflows[i].name, workflows[j].name) {
                panic!("reprise_guest::export!: two workflows have the same name");
            }
            j += 1;
        }
        i += 1;
    }
    let mut i = 0;
    while i < steps.len() {
        let mut j = i + 1;
        while j < steps.len() {
            if str_eq(steps[i].name, steps[j].name) {
                panic!("reprise_guest::export!: two steps have the same name");
            }
            j += 1;
        }
        i += 1;
    }
}

/// String equality usable in a `const fn`.
const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

// Bounds the macros assert on each argument and output type, spanned on that type, so a type
// that cannot cross the boundary is reported where it is written.

/// An inline step's argument: cloned for each attempt, decoded by `run-step`.
pub fn assert_step_arg<T: Clone + DeserializeOwned>() {}
/// An isolated step's argument: encoded for `run-isolated`, decoded by `run-step`.
pub fn assert_isolated_step_arg<T: Serialize + DeserializeOwned>() {}
/// A step's output: recorded as JSON and decoded from it.
pub fn assert_step_output<T: Serialize + DeserializeOwned>() {}
/// A workflow's argument: decoded from the input.
pub fn assert_workflow_arg<T: DeserializeOwned>() {}
/// A workflow's output: encoded as the workflow's result.
pub fn assert_workflow_output<T: Serialize>() {}

// ---------------------------------------------------------------------------------------------
// Step status.

/// The step whose body is running, and which attempt this is (DBOS's `StepStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepStatus {
    /// The step's registered name.
    pub step_name: String,
    /// The attempt running, from 1.
    pub attempt: u32,
    /// The attempts the step's policy allows in all.
    pub max_attempts: u32,
}

thread_local! {
    static STEP_STATUS: RefCell<Option<StepStatus>> = const { RefCell::new(None) };
}

/// The step whose body is running right now, or `None` in workflow code.
///
/// Lets a step body say which attempt it is on (e.g. in an error message, or to behave
/// differently on a last attempt). It is also set while an isolated step runs in its own
/// instance.
pub fn step_status() -> Option<StepStatus> {
    STEP_STATUS.with(|s| s.borrow().clone())
}

/// Sets the step status for one attempt and clears it when dropped (also on an early return).
struct StatusGuard;

impl StatusGuard {
    fn set(step: &str, attempt: &AttemptInfo) -> StatusGuard {
        STEP_STATUS.with(|s| {
            *s.borrow_mut() = Some(StepStatus {
                step_name: step.to_owned(),
                attempt: attempt.attempt,
                max_attempts: attempt.max_attempts,
            })
        });
        StatusGuard
    }
}

impl Drop for StatusGuard {
    fn drop(&mut self) {
        STEP_STATUS.with(|s| *s.borrow_mut() = None);
    }
}

pub(crate) fn in_step() -> bool {
    STEP_STATUS.with(|s| s.borrow().is_some())
}

// ---------------------------------------------------------------------------------------------
// Calling steps from a workflow.

/// Turns a recorded outcome into what the step call returns: the value decoded into `T`, or
/// the failure as a [`StepError`].
fn outcome<T: DeserializeOwned>(step: &str, outcome: StepOutcome) -> Result<T, StepError> {
    match outcome {
        StepOutcome::Value(json) => serde_json::from_slice(&json).map_err(|e| StepError::Decode {
            step: step.to_owned(),
            message: format!("expected {}: {e}", type_name::<T>()),
        }),
        StepOutcome::Failed(failure) if failure.retries_exhausted => {
            Err(StepError::MaxRetriesExceeded(MaxStepRetriesExceeded {
                step: step.to_owned(),
                attempts: u32::try_from(failure.attempt_errors.len()).unwrap_or(u32::MAX),
                errors: failure.attempt_errors,
            }))
        }
        StepOutcome::Failed(failure) => Err(StepError::Failed {
            step: step.to_owned(),
            message: failure.message,
        }),
    }
}

/// An attempt's result as `end-step` takes it: the output's JSON or the error's text.
fn attempt_output<T: Serialize, E: Display>(result: Result<T, E>) -> Result<Vec<u8>, String> {
    match result {
        Ok(value) => serde_json::to_vec(&value)
            .map_err(|e| format!("the step's output did not serialize: {e}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Hands an attempt's result to the host; the answer is the outcome or the next attempt.
fn end_step(output: &Result<Vec<u8>, String>) -> StepEnd {
    durable::end_step(output.as_deref().map_err(String::as_str))
}

/// A step called inside another step (or inside an isolated instance) is a plain call, as in
/// DBOS: only the outermost step is recorded.
fn nested_call<A, T, E: Display>(
    def: &StepDef,
    args: A,
    body: impl Fn(A) -> Result<T, E>,
) -> Result<T, StepError> {
    body(args).map_err(|e| StepError::Failed {
        step: def.name.to_owned(),
        message: e.to_string(),
    })
}

/// The step protocol: `begin-step` (a replay returns the recorded outcome at once), then one
/// `attempt` per `end-step` answer until the host says done.
fn drive_step<T: DeserializeOwned>(
    def: &StepDef,
    mut attempt_once: impl FnMut(&AttemptInfo) -> Result<Vec<u8>, String>,
) -> Result<T, StepError> {
    let mut attempt = match durable::begin_step(def.name, def.config.options()) {
        StepStart::Replay(recorded) => return outcome(def.name, recorded),
        StepStart::Execute(attempt) => attempt,
    };
    if def.config.timeout_ms > 0 {
        durable::set_step_timeout(def.config.timeout_ms);
    }
    loop {
        let output = {
            let _status = StatusGuard::set(def.name, &attempt);
            // Under `cargo test` a harness may stand in for the body.
            match durable::stubbed(def.name, attempt.attempt) {
                Some(output) => output,
                None => attempt_once(&attempt),
            }
        };
        match end_step(&output) {
            StepEnd::Done(recorded) => return outcome(def.name, recorded),
            StepEnd::Retry(next) => attempt = next,
        }
    }
}

/// Runs an inline step through the host: each attempt runs the body in this instance. The
/// expansion of `#[step]`.
pub fn call_step<A, T, E>(
    def: &StepDef,
    args: A,
    body: impl Fn(A) -> Result<T, E>,
) -> Result<T, StepError>
where
    A: Clone,
    T: Serialize + DeserializeOwned,
    E: Display,
{
    if in_step() {
        return nested_call(def, args, body);
    }
    drive_step(def, |_| attempt_output(body(args.clone())))
}

/// Runs an isolated step through the host: each attempt is the host running the step's body in
/// a fresh instance via `run-isolated`, with the arguments as JSON.
pub fn call_isolated_step<A, T, E>(
    def: &StepDef,
    args: A,
    body: impl Fn(A) -> Result<T, E>,
) -> Result<T, StepError>
where
    A: Serialize,
    T: Serialize + DeserializeOwned,
    E: Display,
{
    if in_step() {
        return nested_call(def, args, body);
    }
    let input = serde_json::to_vec(&args)
        .map_err(|e| format!("the step's arguments did not serialize: {e}"));
    drive_step(def, |attempt| match &input {
        Ok(input) => durable::run_isolated(def.name, input, *attempt),
        Err(e) => Err(e.clone()),
    })
}

/// Runs a step's body once from the JSON array of its arguments: what a `StepDef`'s `run`
/// calls for the `run-step` export.
pub fn step_entry<A, T, E>(
    step: &str,
    input: &[u8],
    body: impl FnOnce(A) -> Result<T, E>,
) -> Result<Vec<u8>, BodyError>
where
    A: DeserializeOwned,
    T: Serialize,
    E: Display,
{
    let args: A = serde_json::from_slice(input).map_err(|e| {
        BodyError::InvalidInput(format!(
            "step '{step}' takes a JSON array {}: {e}",
            type_name::<A>()
        ))
    })?;
    attempt_output(body(args)).map_err(BodyError::Failed)
}

// ---------------------------------------------------------------------------------------------
// Workflow entry points.

/// Decodes a workflow's input into its argument (or tuple of arguments).
pub fn workflow_input<A: DeserializeOwned>(workflow: &str, input: &[u8]) -> Result<A, BodyError> {
    serde_json::from_slice(input).map_err(|e| {
        BodyError::InvalidInput(format!(
            "workflow '{workflow}' expects {}: {e}",
            type_name::<A>()
        ))
    })
}

/// Encodes a fallible workflow's result: the `Ok` value as JSON, or the error's text.
pub fn workflow_result<T: Serialize, E: Display>(
    result: Result<T, E>,
) -> Result<Vec<u8>, BodyError> {
    match result {
        Ok(value) => workflow_value(value),
        Err(e) => Err(BodyError::Failed(e.to_string())),
    }
}

/// Encodes an infallible workflow's value as JSON.
pub fn workflow_value<T: Serialize>(value: T) -> Result<Vec<u8>, BodyError> {
    serde_json::to_vec(&value)
        .map_err(|e| BodyError::Failed(format!("the workflow's output did not serialize: {e}")))
}

// ---------------------------------------------------------------------------------------------
// The exports.

/// The `run-workflow` export: finds the workflow by name and runs it.
pub fn run_workflow(
    workflows: &[WorkflowDef],
    name: String,
    input: Vec<u8>,
) -> Result<Vec<u8>, WorkflowError> {
    enter();
    let Some(def) = workflows.iter().find(|w| w.name == name) else {
        return Err(WorkflowError::UnknownWorkflow(name));
    };
    (def.run)(&input).map_err(|e| match e {
        BodyError::InvalidInput(m) => WorkflowError::InvalidInput(m),
        BodyError::Failed(m) => WorkflowError::Failed(m),
    })
}

/// The `run-step` export: runs one attempt of the named step's body, here and now (this is the
/// fresh instance of an isolated step), with the step status set from `attempt`.
pub fn run_step(
    steps: &[StepDef],
    name: String,
    input: Vec<u8>,
    attempt: AttemptInfo,
) -> Result<Vec<u8>, ExportStepError> {
    enter();
    let Some(def) = steps.iter().find(|s| s.name == name) else {
        return Err(ExportStepError::UnknownStep(name));
    };
    let _status = StatusGuard::set(def.name, &attempt);
    (def.run)(&input).map_err(|e| match e {
        BodyError::InvalidInput(m) => ExportStepError::InvalidInput(m),
        BodyError::Failed(m) => ExportStepError::Failed(m),
    })
}

/// The `definitions` export: the registered workflow names and steps with their options.
pub fn definitions(workflows: &[WorkflowDef], steps: &[StepDef]) -> Definitions {
    enter();
    for topic in crate::topics::declared() {
        durable::declare_topic(topic.name, topic.type_name, (topic.schema)().as_bytes());
    }
    Definitions {
        workflows: workflows.iter().map(|w| w.name.to_owned()).collect(),
        steps: steps
            .iter()
            .map(|s| StepDefinition {
                name: s.name.to_owned(),
                options: s.config.options(),
            })
            .collect(),
    }
}

/// Runs on every entry into the component; installs the panic hook the first time.
fn enter() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Guests build with panic = "abort": this is the last chance to say what happened
            // before the trap, so the host can record a panic rather than a bare trap.
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("Box<dyn Any>");
            let report = match info.location() {
                Some(l) => format!("{message} (at {}:{}:{})", l.file(), l.line(), l.column()),
                None => message.to_owned(),
            };
            durable::report_panic(&report);
            previous(info);
        }));
    });
}

// ---------------------------------------------------------------------------------------------
// Helpers for workflow code.

/// Sends a log line to the host's tracing; what the log macros call.
pub fn log(level: LogLevel, message: &str) {
    durable::log(level, message);
}

/// Sleeps durably: the host records the wake-up time, so after a crash only what remains of
/// the sleep is slept. Rounded up to whole milliseconds.
///
/// Use it instead of `std::thread::sleep`, whose time would be slept again on every recovery.
pub fn sleep(duration: Duration) {
    let ms = duration.as_nanos().div_ceil(1_000_000);
    durable::sleep(u64::try_from(ms).unwrap_or(u64::MAX));
}

/// The current wall-clock time in milliseconds since the Unix epoch, recorded: a replay sees
/// the same value as the first run, so workflow code may branch on it.
pub fn now_ms() -> u64 {
    durable::now_ms()
}

/// 64 random bits, recorded: a replay sees the same value as the first run.
pub fn random_u64() -> u64 {
    durable::random_u64()
}

/// The message of every I/O attempt made from workflow code, word for word the host's: workflow
/// code is replayed, so what it reads must come from recorded steps.
pub(crate) const IO_OUTSIDE_STEP: &str =
    "I/O is only allowed inside a step: move this call into a #[step] function";

/// A secret granted to this workflow's instance (`secrets` in its config, `--secret` on the
/// command line), by name. Only inside a step: from workflow code it is an error, as all I/O
/// is. The host never records or logs it, so do not return it from the step either.
pub fn secret(name: &str) -> Result<String, crate::Error> {
    if !in_step() {
        return Err(crate::Error::msg(IO_OUTSIDE_STEP));
    }
    durable::secret(name).map_err(crate::Error::msg)
}

/// This step's idempotency key: `<workflow-id>/<position>`, the same on every attempt and
/// every recovery of this step, different for every other step. A step's body runs at least
/// once (a crash between its effect and its commit runs it again); sent with a request to a
/// service that honours it (`Idempotency-Key`), the effect happens once. [`crate::http`] sends
/// it by default. `None` outside a step.
pub fn idempotency_key() -> Option<String> {
    if !in_step() {
        return None;
    }
    durable::idempotency_key()
}

/// Whether this workflow takes the new branch of a code change named `id`: how new code
/// replays histories recorded by the old code.
///
/// ```ignore
/// if reprise_guest::patched("fraud-check") {
///     check_fraud(&order)?; // v2
/// }
/// charge(&order)?;
/// ```
///
/// A workflow that reaches the call for the first time records a marker there and takes the
/// new branch (`true`), also one that started on the old code and has not yet passed this
/// point. A workflow that passed it before the patch existed recorded its next call there
/// instead: `patched` returns `false` and claims nothing, so it replays the old branch. Only
/// from workflow code, never inside a step. Once no in-flight workflow took the old branch
/// (`reprise patches`), drop the old branch and call [`deprecate_patch`]; once none recorded the
/// marker, drop that too.
pub fn patched(id: &str) -> bool {
    durable::patched(id)
}

/// The second stage of removing a patch: the old branch is gone, and this keeps replaying
/// the histories that recorded the patch's marker (and records it, so code still calling
/// [`patched`] replays workflows started now).
pub fn deprecate_patch(id: &str) {
    durable::patched(id);
}

/// Ends this run of the workflow and starts it again from the beginning with `input`, under
/// the same id, on the newest version of its component the host has. The history so far is
/// kept as a finished run (`reprise workflow runs`) and no longer replayed: a loop that runs
/// for months — a subscription renewing every month — stays short to replay and takes new code
/// at each turn. Children, sent messages and idempotency keys of the next run are its own.
/// Only from workflow code; never returns.
///
/// Panics (trapping the run, which recovers) when `input` does not serialize to JSON.
pub fn continue_as_new<I: serde::Serialize + ?Sized>(input: &I) -> ! {
    let bytes = match serde_json::to_vec(input) {
        Ok(bytes) => bytes,
        Err(err) => panic!("continue_as_new: the input does not serialize to JSON: {err}"),
    };
    durable::continue_as_new(&bytes);
    unreachable!("the host ends the run at continue_as_new")
}

/// Facts about the running workflow (DBOS's `DBOS.workflow_id` and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowInfo {
    /// The workflow's id.
    pub id: String,
    /// The workflow's registered name.
    pub name: String,
    /// 0 on the first execution, n on the n-th recovery. Code that depends on it is not
    /// deterministic: it is meant for tests and diagnostics.
    pub recovery_attempt: u32,
    /// The executor running it.
    pub executor_id: String,
    /// Content digest of the component: the application version.
    pub app_version: String,
    /// Name of the configured instance running it.
    pub instance: String,
    /// The instance's configuration values.
    pub config: BTreeMap<String, String>,
}

/// Facts about the running workflow: its id, name, recovery attempt, executor, version,
/// instance and the instance's configuration.
pub fn workflow_info() -> WorkflowInfo {
    let info = durable::workflow_info();
    WorkflowInfo {
        id: info.id,
        name: info.name,
        recovery_attempt: info.recovery_attempt,
        executor_id: info.executor_id,
        app_version: info.app_version,
        instance: info.instance,
        config: info.config.into_iter().collect(),
    }
}
