//! What ends a parked wait: a value the execution hands back when it parks, and the parking
//! code waits on. Pure, so the execution's interrupts can name it without knowing how parking
//! works.

use std::fmt;

/// What ends a parked wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Wake {
    /// A durable sleep's recorded wake-up time, in milliseconds since the epoch.
    At(u64),
    /// A child workflow's end.
    Child(String),
    /// A message on this workflow's topic, or the recv's recorded deadline (ms).
    Message { topic: String, deadline: u64 },
    /// Another workflow's event, or the get-event's recorded deadline (ms).
    Event {
        workflow_id: String,
        key: String,
        deadline: u64,
    },
    /// A slot of a limited step (see `runtime::step_limits`).
    StepSlot { instance: String, step: String },
}

impl fmt::Display for Wake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Wake::At(ms) => write!(f, "wake-up time {ms}"),
            Wake::Child(id) => write!(f, "the end of workflow {id}"),
            Wake::Message { topic, deadline } => {
                write!(f, "a message on topic {topic:?} or time {deadline}")
            }
            Wake::Event {
                workflow_id,
                key,
                deadline,
            } => write!(f, "event {key:?} of {workflow_id} or time {deadline}"),
            Wake::StepSlot { instance, step } => {
                write!(f, "a slot of step {step:?} of instance {instance:?}")
            }
        }
    }
}
