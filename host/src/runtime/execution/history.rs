//! The recorded steps of a workflow as a cursor: each durable call claims the next position;
//! a recorded position is replayed, an unrecorded one is executed. This is the one place that
//! decides "replay or execute" and checks that the code still asks for what was recorded: the
//! same call (its recorded name says its kind) and, for the calls that reach other workflows
//! (a child's start, a send), the same arguments.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use reprise_protocol::recorded;
use reprise_store::StepRecord;
use sha2::{Digest, Sha256};

/// A durable call as the history checks it: the name it is recorded under and, when the host
/// sees its arguments, their digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    pub(crate) name: String,
    pub(crate) args: Option<String>,
}

impl Call {
    /// A call whose arguments the host does not see (a step) or that has none.
    pub(crate) fn named(name: impl Into<String>) -> Self {
        Call {
            name: name.into(),
            args: None,
        }
    }

    /// A call with arguments the host sees, each part digested in order.
    pub(crate) fn with_args(name: impl Into<String>, parts: &[&[u8]]) -> Self {
        Call {
            name: name.into(),
            args: Some(digest(parts)),
        }
    }
}

/// The digest of a call's arguments as stored: 16 hex digits of SHA-256 over each part's
/// length and bytes, so `("ab", "c")` and `("a", "bc")` differ.
pub(crate) fn digest(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hex::encode(&hasher.finalize()[..8])
}

/// How the code and the recorded history part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Divergence {
    /// Another call than the recorded one.
    Call,
    /// The same call with other arguments (a child's workflow or input, a send's destination
    /// or topic).
    Arguments,
    /// The workflow ended (returned or failed) with recorded positions not yet replayed.
    Unconsumed {
        /// How many recorded positions were left.
        left: usize,
    },
}

/// The guest's code no longer makes the durable calls its history recorded: it changed under
/// a running workflow. Replaying further would hand recorded outcomes to the wrong calls, so
/// the workflow fails (and `upgrade-check` reports where).
#[derive(Debug, Clone, thiserror::Error)]
pub struct NonDeterminism {
    /// The workflow whose code changed.
    pub workflow_id: String,
    /// The position where the calls differ.
    pub function_id: u32,
    /// What is recorded there: its name, and its arguments' digest when stored.
    pub recorded: String,
    /// What the code asks for now, or how it ended.
    pub requested: String,
    /// How they differ.
    pub divergence: Divergence,
}

impl fmt::Display for NonDeterminism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (id, at) = (&self.workflow_id, self.function_id);
        let (recorded, requested) = (&self.recorded, &self.requested);
        match &self.divergence {
            Divergence::Call => write!(
                f,
                "non-determinism in workflow {id}: position {at} was recorded as {recorded} but \
                 the workflow now calls {requested}"
            )?,
            Divergence::Arguments => write!(
                f,
                "non-determinism in workflow {id}: position {at} was recorded as {recorded} but \
                 the workflow now calls {requested}: a child's workflow and input and a send's \
                 destination and topic must be the same on replay"
            )?,
            Divergence::Unconsumed { left } => write!(
                f,
                "non-determinism in workflow {id}: the workflow {requested} at position {at} \
                 while {left} recorded position(s) were not replayed, the first {recorded}"
            )?,
        }
        write!(
            f,
            "; workflow code must make the same durable calls in the same order on replay \
             (guard a change with patched(\"id\"))"
        )
    }
}

/// A recorded call as a divergence names it: `"name"` or `"name" (args 1a2b…)`.
fn describe(name: &str, args: Option<&str>) -> String {
    match args {
        Some(args) => format!("{name:?} (arguments {args})"),
        None => format!("{name:?}"),
    }
}

/// What to do at a position. Returned once per durable call and taken apart at once, so the
/// record is moved, not boxed.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Position {
    /// Hand back this recorded outcome; do not run the code.
    Replay(StepRecord),
    /// Nothing recorded here: run the code, record at this function id.
    Execute(u32),
}

/// A cursor over a workflow's recorded steps.
#[derive(Debug)]
pub struct History {
    workflow_id: String,
    recorded: BTreeMap<u32, StepRecord>,
    next: u32,
    /// The argument digests of the calls claimed for execution, by position, for their records.
    executing: HashMap<u32, String>,
    /// Positions holding an operator's record (a move to other code), which no call claims.
    skipped: BTreeSet<u32>,
}

impl History {
    pub fn new(workflow_id: &str, steps: Vec<StepRecord>) -> Self {
        let (moves, calls): (Vec<_>, Vec<_>) = steps
            .into_iter()
            .partition(|s| recorded::kind_of(&s.name) == recorded::Kind::Upgrade);
        History {
            workflow_id: workflow_id.to_string(),
            recorded: calls.into_iter().map(|s| (s.function_id, s)).collect(),
            next: 0,
            executing: HashMap::new(),
            skipped: moves.into_iter().map(|s| s.function_id).collect(),
        }
    }

    /// Steps over operators' records at the next position.
    fn skip(&mut self) {
        while self.skipped.remove(&self.next) {
            self.next += 1;
        }
    }

    /// Whether recorded positions lie ahead: the workflow code running now already ran, in an
    /// earlier execution or before the workflow parked.
    pub fn replaying(&self) -> bool {
        !self.recorded.is_empty()
    }

    /// The position the next call claims.
    pub fn next_position(&self) -> u32 {
        let mut next = self.next;
        while self.skipped.contains(&next) {
            next += 1;
        }
        next
    }

    /// Claims the next position for `call`.
    pub(crate) fn claim(&mut self, call: &Call) -> Result<Position, NonDeterminism> {
        self.skip();
        let function_id = self.next;
        self.next += 1;
        let Some(step) = self.recorded.remove(&function_id) else {
            if let Some(args) = &call.args {
                self.executing.insert(function_id, args.clone());
            }
            return Ok(Position::Execute(function_id));
        };
        let divergence = if step.name != call.name {
            Some(Divergence::Call)
        } else if checks_args(&call.name) && differ(step.args.as_deref(), call.args.as_deref()) {
            Some(Divergence::Arguments)
        } else {
            None
        };
        match divergence {
            None => Ok(Position::Replay(step)),
            Some(divergence) => Err(NonDeterminism {
                workflow_id: self.workflow_id.clone(),
                function_id,
                recorded: describe(&step.name, step.args.as_deref()),
                requested: describe(&call.name, call.args.as_deref()),
                divergence,
            }),
        }
    }

    /// `patched(id)`: true and the position claimed when the patch's marker is recorded next,
    /// or nothing is (new code records it: [`Position::Execute`]); false, claiming nothing,
    /// when another call was recorded there: the workflow passed this point before the patch.
    pub(crate) fn patch(&mut self, id: &str) -> Option<Position> {
        let name = recorded::patch(id);
        self.skip();
        match self.recorded.get(&self.next) {
            Some(step) if step.name != name => None,
            _ => self.claim(&Call::named(name)).ok(),
        }
    }

    /// The argument digest of the call executing at `function_id`, for its record.
    pub(crate) fn args_of(&self, function_id: u32) -> Option<String> {
        self.executing.get(&function_id).cloned()
    }

    /// The divergence of a workflow that `ended` ("returned", "failed") with recorded
    /// positions not replayed; none when every one was.
    pub fn unconsumed(&self, ended: &str) -> Option<NonDeterminism> {
        let (_, first) = self.recorded.first_key_value()?;
        Some(NonDeterminism {
            workflow_id: self.workflow_id.clone(),
            function_id: self.next,
            recorded: format!(
                "at position {}: {}",
                first.function_id,
                describe(&first.name, first.args.as_deref())
            ),
            requested: ended.to_string(),
            divergence: Divergence::Unconsumed {
                left: self.recorded.len(),
            },
        })
    }
}

/// Whether a call's arguments must match on replay: those that reach other workflows. Other
/// digests are stored for the record and for `upgrade-check`'s report.
fn checks_args(name: &str) -> bool {
    matches!(
        recorded::kind_of(name),
        recorded::Kind::StartChild | recorded::Kind::Send
    )
}

/// Two digests differ when both are known and not equal: rows written before digests were
/// stored are checked by name only.
fn differ(recorded: Option<&str>, requested: Option<&str>) -> bool {
    matches!((recorded, requested), (Some(a), Some(b)) if a != b)
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
