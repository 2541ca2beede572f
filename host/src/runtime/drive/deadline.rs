//! Workflow deadlines: a workflow started with a timeout (or the child of one that has a
//! deadline) is cancelled when its deadline passes, with a reason that names it, wherever it
//! stands: running, parked, or found past it at recovery after its host was down.

use std::time::Duration;

use crate::runtime::error::RuntimeError;
use crate::runtime::shared::Shared;
use reprise_store::{WorkflowRecord, now_ms};

/// Why the workflow must end now, if its deadline passed by `now` (ms).
pub(crate) fn passed(workflow: &WorkflowRecord, now: i64) -> Option<String> {
    let deadline = workflow.deadline_at?;
    if now < deadline {
        return None;
    }
    let own = workflow.timeout_ms.and_then(|ms| {
        let start = workflow.started_at?;
        (start.saturating_add(i64::try_from(ms).ok()?) == deadline).then_some(ms)
    });
    Some(match own {
        Some(ms) => format!(
            "deadline exceeded: the workflow's timeout of {ms} ms passed at {deadline} \
             (ms since the epoch)"
        ),
        None => format!(
            "deadline exceeded: the deadline {deadline} (ms since the epoch), inherited from \
             its parent, passed"
        ),
    })
}

/// Resolves when `deadline` (ms since the epoch) is reached; never without one.
pub(crate) async fn reached(deadline: Option<i64>) {
    match deadline {
        Some(at) => {
            let remaining = u64::try_from(at - now_ms()).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(remaining)).await;
        }
        None => std::future::pending().await,
    }
}

/// Cancels the workflow for `reason` and wakes whoever waits for its end.
pub(crate) async fn expire(
    shared: &Shared,
    id: &str,
    reason: &str,
) -> Result<WorkflowRecord, RuntimeError> {
    let record = shared.store.expire_workflow(id, reason).await?;
    tracing::info!(workflow_id = id, "{reason}");
    shared.metrics.workflow_finished(record.status);
    shared.completions.complete(id);
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reprise_store::WorkflowStatus;

    #[test]
    fn the_reason_names_the_timeout_or_the_inherited_deadline() {
        let own = WorkflowRecord {
            timeout_ms: Some(500),
            started_at: Some(1_000),
            deadline_at: Some(1_500),
            ..WorkflowRecord::example("w", WorkflowStatus::Pending)
        };
        assert_eq!(passed(&own, 1_499), None);
        let reason = passed(&own, 1_500).expect("passed");
        assert!(reason.contains("timeout of 500 ms"), "{reason}");
        let inherited = WorkflowRecord {
            deadline_at: Some(1_200),
            ..own
        };
        let reason = passed(&inherited, 2_000).expect("passed");
        assert!(reason.contains("inherited from its parent"), "{reason}");
        let none = WorkflowRecord::example("w", WorkflowStatus::Pending);
        assert_eq!(passed(&none, i64::MAX), None);
    }
}
