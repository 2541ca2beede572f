//! The recorded steps of a workflow as a cursor: each durable call claims the next position;
//! a recorded position is replayed, an unrecorded one is executed. This is the one place that
//! decides "replay or execute" and checks that the code still asks for what was recorded.

use std::collections::BTreeMap;

use reprise_store::StepRecord;

/// The guest asked for a different step than the one recorded at this position: its code (or
/// the control flow feeding it) changed under a running workflow. Replaying further would
/// hand recorded outcomes to the wrong calls, so the workflow fails.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "non-determinism in workflow {workflow_id}: position {function_id} was recorded as step {recorded:?} \
     but the workflow now calls {requested:?}; workflow code must make the same durable calls in the same order on replay"
)]
pub struct NonDeterminism {
    /// The workflow whose code changed.
    pub workflow_id: String,
    /// The position where the calls differ.
    pub function_id: u32,
    /// The name recorded there.
    pub recorded: String,
    /// The name the code asks for now.
    pub requested: String,
}

/// What to do at a position.
#[derive(Debug)]
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
}

impl History {
    pub fn new(workflow_id: &str, steps: Vec<StepRecord>) -> Self {
        History {
            workflow_id: workflow_id.to_string(),
            recorded: steps.into_iter().map(|s| (s.function_id, s)).collect(),
            next: 0,
        }
    }

    /// Whether recorded positions lie ahead: the workflow code running now already ran, in an
    /// earlier execution or before the workflow parked.
    pub fn replaying(&self) -> bool {
        !self.recorded.is_empty()
    }

    /// Claims the next position for a durable call named `name`.
    pub fn claim(&mut self, name: &str) -> Result<Position, NonDeterminism> {
        let function_id = self.next;
        self.next += 1;
        match self.recorded.remove(&function_id) {
            Some(step) if step.name == name => Ok(Position::Replay(step)),
            Some(step) => Err(NonDeterminism {
                workflow_id: self.workflow_id.clone(),
                function_id,
                recorded: step.name,
                requested: name.to_string(),
            }),
            None => Ok(Position::Execute(function_id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(function_id: u32, name: &str) -> StepRecord {
        StepRecord {
            workflow_id: "wf".into(),
            function_id,
            name: name.into(),
            output: Some("1".into()),
            error: None,
            attempts: 1,
            started_at: 0,
            completed_at: 0,
            epoch: None,
            committed_epoch: None,
        }
    }

    #[test]
    fn replays_recorded_positions_then_executes() {
        let mut history = History::new("wf", vec![step(0, "a"), step(1, "b")]);
        assert!(matches!(history.claim("a"), Ok(Position::Replay(s)) if s.name == "a"));
        assert!(matches!(history.claim("b"), Ok(Position::Replay(s)) if s.function_id == 1));
        assert!(matches!(history.claim("c"), Ok(Position::Execute(2))));
    }

    #[test]
    fn replaying_lasts_while_recorded_positions_lie_ahead() {
        let mut history = History::new("wf", vec![step(0, "a"), step(1, "b")]);
        assert!(history.replaying());
        history.claim("a").expect("replay");
        assert!(history.replaying());
        history.claim("b").expect("replay");
        assert!(
            !history.replaying(),
            "past the last recorded position, code runs anew"
        );
    }

    #[test]
    fn a_different_name_at_a_recorded_position_is_non_determinism() {
        let mut history = History::new("wf", vec![step(0, "a")]);
        let err = history.claim("z").unwrap_err();
        assert_eq!(
            (
                err.function_id,
                err.recorded.as_str(),
                err.requested.as_str()
            ),
            (0, "a", "z")
        );
        assert!(err.to_string().contains("non-determinism"));
    }
}
