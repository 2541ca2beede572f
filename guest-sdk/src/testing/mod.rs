//! Test workflows natively with `cargo test`: an in-memory host with a recorded history,
//! virtual time, injected failures, stubbed steps and HTTP, and crashes with replay.
//!
//! ```ignore
//! use reprise_guest::testing::Harness;
//!
//! #[test]
//! fn a_crash_after_the_reservation_does_not_reserve_twice() {
//!     let mut h = Harness::new();
//!     h.stub_step("reserve_stock", |_| Ok(serde_json::json!("r-1")))
//!         .stub_http(|_| Ok(Response::json_body(201, &serde_json::json!({"id": "ch_1"}))))
//!         .secret("PAYMENT_KEY", "sk_test")
//!         .crash_after_steps(1);
//!     assert!(h.run(|| checkout(order())).is_err()); // crashed after reserve_stock
//!     let receipt = h.run(|| checkout(order())).expect("no crash").expect("checkout");
//!     assert_eq!(h.executions("reserve_stock"), 1);    // replayed, not run again
//! }
//! ```
//!
//! Each test thread has its own harness; workflow functions are called as plain functions
//! inside [`Harness::run`]. Child workflows do not run under the harness.

pub(crate) mod host;
mod state;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;
use std::time::Duration;

use crate::__bindings::reprise::workflow::types::StepOutcome;
use crate::http::native::{Transport, set_transport};
use crate::http::{HttpError, Request, Response};

use state::State;

/// A simulated crash unwinds with a [`Crash`] payload, which [`Harness::run`] catches and
/// reports as [`Crashed`]: the panic hook says nothing of it (no message, no backtrace), and
/// goes on reporting every other panic as it did.
fn quiet_crashes() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<Crash>() {
                previous(info);
            }
        }));
    });
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<RefCell<State>>>> = const { RefCell::new(None) };
}

/// Runs `f` on the state of the harness whose `run` is in progress on this thread.
fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let state = CURRENT.with(|c| c.borrow().clone()).unwrap_or_else(|| {
        panic!(
            "reprise_guest: a workflow or step ran natively outside testing::Harness::run; \
             call it as `harness.run(|| my_workflow(input))`"
        )
    });
    let mut state = state.borrow_mut();
    f(&mut state)
}

/// The panic payload of a simulated crash.
pub(crate) struct Crash;

/// The panic payload of `continue_as_new`: the next run's input (JSON).
pub(crate) struct ContinuedAsNew(pub(crate) Vec<u8>);

/// A run that stopped at the crash the test asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crashed {
    /// Step outcomes recorded when it stopped.
    pub steps_recorded: usize,
}

impl fmt::Display for Crashed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "crashed after {} recorded steps", self.steps_recorded)
    }
}

/// A recorded step, as [`Harness::steps`] shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedStep {
    /// The step's name.
    pub name: String,
    /// Its output, when it succeeded.
    pub output: Option<serde_json::Value>,
    /// Its last error, when it failed for good.
    pub error: Option<String>,
    /// Every failed attempt's error, oldest first.
    pub attempt_errors: Vec<String>,
    /// Attempts made.
    pub attempts: u32,
}

/// An in-memory host for one workflow: run it, crash it, replay it, look at what it recorded.
pub struct Harness {
    state: Rc<RefCell<State>>,
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

impl Harness {
    /// A harness with an empty history, at 2025-01-01T00:00:00Z virtual time.
    pub fn new() -> Self {
        Harness {
            state: Rc::new(RefCell::new(State::new())),
        }
    }

    fn state(&self) -> std::cell::RefMut<'_, State> {
        self.state.borrow_mut()
    }

    /// Runs workflow code (call the workflow function in `f`) against this harness. The first
    /// run executes; later runs replay what earlier ones recorded, as a recovery does.
    /// `Err(Crashed)` when a crash asked for by [`Harness::crash_after_steps`] stopped it.
    pub fn run<T>(&mut self, f: impl FnOnce() -> T) -> Result<T, Crashed> {
        {
            let mut s = self.state();
            s.position = 0;
            s.pending = None;
            s.runs += 1;
        }
        quiet_crashes();
        let previous = CURRENT.with(|c| c.replace(Some(self.state.clone())));
        let previous_http = set_transport(Some(self.http_transport()));
        let result = catch_unwind(AssertUnwindSafe(f));
        set_transport(previous_http);
        CURRENT.with(|c| *c.borrow_mut() = previous);
        match result {
            Ok(value) => Ok(value),
            Err(payload) if payload.is::<ContinuedAsNew>() => {
                let input = payload
                    .downcast::<ContinuedAsNew>()
                    .map(|c| c.0)
                    .unwrap_or_default();
                let mut s = self.state();
                s.history.clear();
                s.continued = serde_json::from_slice(&input).ok();
                Err(Crashed { steps_recorded: 0 })
            }
            Err(payload) if payload.is::<Crash>() => Err(Crashed {
                steps_recorded: self.state().steps_recorded(),
            }),
            Err(payload) => resume_unwind(payload),
        }
    }

    /// Records each request and hands it to the stub, called outside the state's borrow (a
    /// stub may log or read the clock).
    fn http_transport(&self) -> Transport {
        let state = self.state.clone();
        Rc::new(move |request: &Request| {
            let stub = {
                let mut s = state.borrow_mut();
                s.requests.push(request.clone());
                s.http.clone()
            };
            match stub {
                Some(stub) => stub(request),
                None => Err(HttpError::Failed {
                    request: format!("{} {}", request.method.as_str(), request.url),
                    message: "no HTTP stub: give the harness one with Harness::stub_http".into(),
                }),
            }
        })
    }

    /// Makes the next `times` attempts of `step` fail (after its body ran), as a flaky
    /// service would; its retry policy applies, with backoffs in virtual time.
    pub fn fail_step(&mut self, step: &str, times: u32) -> &mut Self {
        self.state().failures.insert(step.to_string(), times);
        self
    }

    /// Replaces `step`'s body: `stub(attempt)` gives its output as JSON, or its error.
    pub fn stub_step(
        &mut self,
        step: &str,
        stub: impl Fn(u32) -> Result<serde_json::Value, String> + 'static,
    ) -> &mut Self {
        self.state().stubs.insert(step.to_string(), Rc::new(stub));
        self
    }

    /// Answers the HTTP requests steps make through [`crate::http`].
    pub fn stub_http(
        &mut self,
        stub: impl Fn(&Request) -> Result<Response, HttpError> + 'static,
    ) -> &mut Self {
        self.state().http = Some(Rc::new(stub));
        self
    }

    /// Grants a secret to steps.
    pub fn secret(&mut self, name: &str, value: &str) -> &mut Self {
        self.state()
            .secrets
            .insert(name.to_string(), value.to_string());
        self
    }

    /// Sets a config value `workflow_info().config` shows.
    pub fn config(&mut self, key: &str, value: &str) -> &mut Self {
        self.state()
            .config
            .insert(key.to_string(), value.to_string());
        self
    }

    /// Sets the workflow id `workflow_info()` shows.
    pub fn workflow_id(&mut self, id: &str) -> &mut Self {
        self.state().workflow_id = id.to_string();
        self
    }

    /// Stops the next run right after its `steps`-th step outcome (counting from the
    /// workflow's start) is recorded, as a host crash would; the following run replays.
    pub fn crash_after_steps(&mut self, steps: usize) -> &mut Self {
        self.state().crash_after_steps = Some(steps);
        self
    }

    /// The input the last run gave `continue_as_new`, if it did: the harness then starts the
    /// next run with an empty history (that run returned `Err(Crashed)`); call the workflow
    /// again with this input to run the next turn.
    pub fn continued_as_new(&self) -> Option<serde_json::Value> {
        self.state.borrow().continued.clone()
    }

    /// The recorded steps, in order.
    pub fn steps(&self) -> Vec<RecordedStep> {
        self.state()
            .history
            .iter()
            .filter(|r| !r.name.starts_with(reprise_protocol::recorded::PREFIX))
            .map(|r| match &r.outcome {
                StepOutcome::Value(json) => RecordedStep {
                    name: r.name.clone(),
                    output: serde_json::from_slice(json).ok(),
                    error: None,
                    attempt_errors: r.attempt_errors.clone(),
                    attempts: r.attempts,
                },
                StepOutcome::Failed(f) => RecordedStep {
                    name: r.name.clone(),
                    output: None,
                    error: Some(f.message.clone()),
                    attempt_errors: r.attempt_errors.clone(),
                    attempts: r.attempts,
                },
            })
            .collect()
    }

    /// How many times `step` was executed rather than replayed: one per call whose outcome
    /// was not recorded yet, however many attempts it took (see [`Harness::attempts`]).
    pub fn executions(&self, step: &str) -> u32 {
        self.state().executions.get(step).copied().unwrap_or(0)
    }

    /// How many times the body of `step` ran: every attempt of every execution (a step
    /// that failed twice and then succeeded: 3). Replays do not count.
    pub fn attempts(&self, step: &str) -> u32 {
        self.state().attempts.get(step).copied().unwrap_or(0)
    }

    /// Virtual time now, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.state().now_ms
    }

    /// Virtual time spent in durable sleeps and retry backoffs.
    pub fn slept(&self) -> Duration {
        Duration::from_millis(self.state().slept_ms)
    }

    /// Log lines as `(level, message)`.
    pub fn logs(&self) -> Vec<(String, String)> {
        self.state().logs.clone()
    }

    /// The HTTP requests steps made, in order.
    pub fn http_requests(&self) -> Vec<Request> {
        self.state().requests.clone()
    }

    /// The config values set with [`Harness::config`].
    pub fn config_values(&self) -> BTreeMap<String, String> {
        self.state().config.clone()
    }

    /// Sends the workflow a message on `topic`: its `recv` of that topic takes them in the
    /// order sent. A `recv` with none waiting times out at once, in virtual time. Panics where
    /// the host would refuse the send: see [`Harness::try_message`].
    pub fn message(&mut self, topic: &str, message: &impl serde::Serialize) -> &mut Self {
        if let Err(refused) = self.try_message(topic, message) {
            panic!("{refused}");
        }
        self
    }

    /// Sends like [`Harness::message`], or returns the refusal when the topic has a declared
    /// type ([`crate::topic`]) the message does not decode as, as the host refuses it.
    pub fn try_message(
        &mut self,
        topic: &str,
        message: &impl serde::Serialize,
    ) -> Result<&mut Self, String> {
        let json = serde_json::to_vec(message).map_err(|e| e.to_string())?;
        if let Some(declared) = crate::topics::find(topic) {
            (declared.check)(&json).map_err(|e| {
                format!(
                    "the message does not match topic {topic:?}'s type {}: {e}",
                    declared.type_name
                )
            })?;
        }
        self.state().inbox.push_back((topic.to_string(), json));
        Ok(self)
    }

    /// Sets an event of another workflow, for the workflow's `get_event` to read.
    pub fn event_of(
        &mut self,
        workflow_id: &str,
        key: &str,
        value: &impl serde::Serialize,
    ) -> &mut Self {
        let json = serde_json::to_vec(value).expect("the event serializes");
        self.state()
            .others_events
            .insert((workflow_id.to_string(), key.to_string()), json);
        self
    }

    /// Runs the workflow as a schedule's firing due at `scheduled_at_ms` that started at
    /// `started_at_ms`, for `scheduled()`.
    pub fn scheduled(&mut self, scheduled_at_ms: u64, started_at_ms: u64) -> &mut Self {
        self.state().scheduled = Some((scheduled_at_ms, started_at_ms));
        self
    }

    /// The messages the workflow sent, as `(workflow id, topic, message)`, in order.
    pub fn sent(&self) -> Vec<(String, String, serde_json::Value)> {
        self.state()
            .sent
            .iter()
            .map(|(id, topic, json)| {
                let value = serde_json::from_slice(json).unwrap_or_default();
                (id.clone(), topic.clone(), value)
            })
            .collect()
    }

    /// The workflow's events, latest value by key.
    pub fn events(&self) -> BTreeMap<String, serde_json::Value> {
        self.state()
            .events
            .iter()
            .map(|(key, json)| {
                (
                    key.clone(),
                    serde_json::from_slice(json).unwrap_or_default(),
                )
            })
            .collect()
    }

    /// The values the workflow wrote to its stream `key`, in order.
    pub fn stream(&self, key: &str) -> Vec<serde_json::Value> {
        self.state()
            .streams
            .get(key)
            .map(|(values, _)| {
                values
                    .iter()
                    .map(|json| serde_json::from_slice(json).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the workflow closed its stream `key`.
    pub fn stream_closed(&self, key: &str) -> bool {
        self.state()
            .streams
            .get(key)
            .is_some_and(|(_, closed)| *closed)
    }
}
