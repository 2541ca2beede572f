//! What a write binds, prepared before it reaches the database: a new workflow's first state
//! and deadline, a step with its failure encoded, an ending's columns, an ownership epoch as SQL
//! holds it.

use super::{NewWorkflow, StepRecord, StoreError, WorkflowEnd, WorkflowStatus};

/// How a new workflow's row begins.
pub(super) struct Initial {
    pub status: WorkflowStatus,
    pub executions: i64,
    pub started_at: Option<i64>,
    pub deadline_at: Option<i64>,
}

/// The status, execution count, start time and deadline a new workflow's row begins with: a
/// queued or delayed workflow waits for a claim, whatever the caller asked, and its timeout
/// starts to count then.
pub(super) fn initial_state(new: &NewWorkflow, now: i64) -> Initial {
    let delayed = new.not_before.is_some_and(|at| at > now);
    let (status, executions, started_at) = match (&new.queue_name, new.begin_execution) {
        (Some(_), _) => (WorkflowStatus::Enqueued, 0, None),
        (None, _) if delayed => (WorkflowStatus::Enqueued, 0, None),
        (None, true) => (WorkflowStatus::Pending, 1, Some(now)),
        (None, false) => (WorkflowStatus::Pending, 0, None),
    };
    let deadline_at = match (started_at, new.timeout_ms) {
        (Some(start), Some(ms)) => {
            let own = start.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX));
            Some(new.deadline_at.map_or(own, |inherited| inherited.min(own)))
        }
        _ => new.deadline_at,
    };
    Initial {
        status,
        executions,
        started_at,
        deadline_at,
    }
}

/// The deadline a workflow gets as its first execution begins at `$now` (a placeholder):
/// the earlier of the one it has and the end of its timeout.
macro_rules! first_deadline {
    ($now:literal) => {
        concat!(
            "CASE WHEN timeout_ms IS NULL THEN deadline_at \
             WHEN deadline_at IS NOT NULL AND deadline_at < ",
            $now,
            " + timeout_ms THEN deadline_at ELSE ",
            $now,
            " + timeout_ms END"
        )
    };
}
pub(super) use first_deadline;

/// A step as stored: its failure already encoded, so writing it needs nothing more than binds
/// (SQLite encodes off its writer's path).
#[derive(Debug, Clone)]
pub(super) struct StepRow {
    pub workflow_id: String,
    pub function_id: u32,
    pub name: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub attempts: u32,
    pub started_at: i64,
    pub completed_at: i64,
    /// The ownership epoch the write needs (see [`StepRecord::epoch`]).
    pub epoch: Option<i64>,
    /// The call's kind, from its name.
    pub kind: &'static str,
    pub args: Option<String>,
}

impl StepRow {
    pub(super) fn new(step: &StepRecord) -> Result<StepRow, StoreError> {
        let error = match &step.error {
            Some(failure) => {
                Some(
                    serde_json::to_string(failure).map_err(|err| StoreError::Corrupt {
                        table: "operation_outputs",
                        message: format!("cannot encode step failure: {err}"),
                    })?,
                )
            }
            None => None,
        };
        Ok(StepRow {
            workflow_id: step.workflow_id.clone(),
            function_id: step.function_id,
            name: step.name.clone(),
            output: step.output.clone(),
            error,
            attempts: step.attempts,
            started_at: step.started_at,
            completed_at: step.completed_at,
            epoch: step.epoch.map(epoch_value),
            kind: reprise_protocol::recorded::kind_of(&step.name).as_str(),
            args: step.args.clone(),
        })
    }
}

/// An epoch as bound to SQL; no workflow reaches 2^63 ownership changes.
pub(super) fn epoch_value(epoch: u64) -> i64 {
    i64::try_from(epoch).unwrap_or(i64::MAX)
}

/// The status, output and error columns of an ending.
pub(super) fn ending_columns(end: &WorkflowEnd) -> (WorkflowStatus, Option<&str>, Option<&str>) {
    match end {
        WorkflowEnd::Success(output) => (WorkflowStatus::Success, Some(output.as_str()), None),
        WorkflowEnd::Error(error) => (WorkflowStatus::Error, None, Some(error.as_str())),
        WorkflowEnd::MaxRecoveryAttemptsExceeded(error) => (
            WorkflowStatus::MaxRecoveryAttemptsExceeded,
            None,
            Some(error.as_str()),
        ),
        WorkflowEnd::Paused(error) => (WorkflowStatus::Paused, None, Some(error.as_str())),
    }
}
