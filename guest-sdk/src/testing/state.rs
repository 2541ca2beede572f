//! What the test host remembers of one workflow: its recorded history, the step attempt in
//! progress, virtual time, and what the test asked for (failures, stubs, secrets, a crash).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;

use crate::__bindings::reprise::workflow::types::{StepFailure, StepOptions, StepOutcome};
use crate::http::{HttpError, Request, Response};

/// Stands in for a step's body: given the attempt number, its output as JSON or its error.
pub(super) type StepStub = Rc<dyn Fn(u32) -> Result<serde_json::Value, String>>;
/// Answers HTTP requests made by steps.
pub(super) type HttpStub = Rc<dyn Fn(&Request) -> Result<Response, HttpError>>;

/// One recorded durable call: a step's outcome, or a sleep, clock or random reading.
#[derive(Debug, Clone)]
pub(super) struct Record {
    pub(super) name: String,
    pub(super) outcome: StepOutcome,
    pub(super) attempts: u32,
    /// The errors of the attempts that failed, oldest first, also when a later one succeeded.
    pub(super) attempt_errors: Vec<String>,
}

/// A step attempt between `begin-step` and `end-step`.
pub(super) struct Pending {
    pub(super) name: String,
    pub(super) options: StepOptions,
    pub(super) attempt: u32,
    pub(super) max_attempts: u32,
    pub(super) errors: Vec<String>,
}

pub(super) struct State {
    pub(super) history: Vec<Record>,
    /// The next position of the run in progress.
    pub(super) position: usize,
    pub(super) pending: Option<Pending>,
    pub(super) now_ms: u64,
    pub(super) slept_ms: u64,
    pub(super) random: u64,
    /// Per step: executions (not replays), and attempts of the body within them.
    pub(super) executions: HashMap<String, u32>,
    pub(super) attempts: HashMap<String, u32>,
    pub(super) failures: HashMap<String, u32>,
    pub(super) stubs: HashMap<String, StepStub>,
    pub(super) http: Option<HttpStub>,
    pub(super) requests: Vec<Request>,
    pub(super) secrets: HashMap<String, String>,
    pub(super) logs: Vec<(String, String)>,
    pub(super) crash_after_steps: Option<usize>,
    pub(super) workflow_id: String,
    pub(super) workflow_name: String,
    pub(super) config: BTreeMap<String, String>,
    pub(super) runs: u32,
    /// Messages the test sent to the workflow, by topic, in send order: what `recv` takes.
    pub(super) inbox: VecDeque<(String, Vec<u8>)>,
    /// Events of other workflows the test set: what `get_event` reads.
    pub(super) others_events: HashMap<(String, String), Vec<u8>>,
    /// Messages the workflow sent: (destination, topic, JSON).
    pub(super) sent: Vec<(String, String, Vec<u8>)>,
    /// The workflow's events, latest value by key.
    pub(super) events: BTreeMap<String, Vec<u8>>,
    /// The workflow's streams: values in order, and whether closed.
    pub(super) streams: BTreeMap<String, (Vec<Vec<u8>>, bool)>,
    /// What `scheduled()` returns.
    pub(super) scheduled: Option<(u64, u64)>,
    /// The input of the last `continue_as_new`.
    pub(super) continued: Option<serde_json::Value>,
}

impl State {
    /// 2025-01-01T00:00:00Z: a fixed start, so tests that print times are stable.
    pub(super) const EPOCH_MS: u64 = 1_735_689_600_000;

    pub(super) fn new() -> Self {
        State {
            history: Vec::new(),
            position: 0,
            pending: None,
            now_ms: Self::EPOCH_MS,
            slept_ms: 0,
            random: 0x5EED,
            executions: HashMap::new(),
            attempts: HashMap::new(),
            failures: HashMap::new(),
            stubs: HashMap::new(),
            http: None,
            requests: Vec::new(),
            secrets: HashMap::new(),
            logs: Vec::new(),
            crash_after_steps: None,
            workflow_id: "test-workflow".into(),
            workflow_name: "test".into(),
            config: BTreeMap::new(),
            runs: 0,
            inbox: VecDeque::new(),
            others_events: HashMap::new(),
            sent: Vec::new(),
            events: BTreeMap::new(),
            streams: BTreeMap::new(),
            scheduled: None,
            continued: None,
        }
    }

    /// The record at the run's next position, if this is a replay of it; advances.
    pub(super) fn claim(&mut self, name: &str) -> Option<Record> {
        let record = self.history.get(self.position).cloned()?;
        assert_eq!(
            record.name, name,
            "non-determinism: position {} recorded {:?}, the replay asked for {name:?}",
            self.position, record.name
        );
        self.position += 1;
        Some(record)
    }

    /// Records a new outcome at the run's next position.
    pub(super) fn record(
        &mut self,
        name: &str,
        outcome: StepOutcome,
        attempts: u32,
        attempt_errors: Vec<String>,
    ) {
        debug_assert_eq!(self.position, self.history.len());
        self.history.push(Record {
            name: name.to_string(),
            outcome,
            attempts,
            attempt_errors,
        });
        self.position += 1;
    }

    /// A recorded value of a host-made call (`reprise.now`, …), made once and replayed.
    pub(super) fn recorded_u64(&mut self, name: &str, make: impl FnOnce(&mut State) -> u64) -> u64 {
        if let Some(record) = self.claim(name) {
            return match record.outcome {
                StepOutcome::Value(json) => serde_json::from_slice(&json).unwrap_or_default(),
                StepOutcome::Failed(_) => 0,
            };
        }
        let value = make(self);
        let json = serde_json::to_vec(&value).unwrap_or_default();
        self.record(name, StepOutcome::Value(json), 1, Vec::new());
        value
    }

    /// A recorded value of a host-made call, JSON bytes made once and replayed.
    pub(super) fn recorded_json(
        &mut self,
        name: &str,
        make: impl FnOnce(&mut State) -> Vec<u8>,
    ) -> Vec<u8> {
        if let Some(record) = self.claim(name) {
            return match record.outcome {
                StepOutcome::Value(json) => json,
                StepOutcome::Failed(f) => f.message.into_bytes(),
            };
        }
        let json = make(self);
        self.record(name, StepOutcome::Value(json.clone()), 1, Vec::new());
        json
    }

    /// How many step outcomes (not sleeps or readings) are recorded.
    pub(super) fn steps_recorded(&self) -> usize {
        self.history
            .iter()
            .filter(|r| !r.name.starts_with(reprise_protocol::recorded::PREFIX))
            .count()
    }
}

/// The final failure of a step whose attempts are used up.
pub(super) fn failure(pending: &mut Pending, message: String) -> StepFailure {
    StepFailure {
        message,
        attempt_errors: std::mem::take(&mut pending.errors),
        retries_exhausted: pending.options.retry.retries_allowed,
    }
}
