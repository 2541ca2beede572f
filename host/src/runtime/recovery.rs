//! Traps → re-instantiate and replay, bounded by the workflow's `max_recovery_attempts`; and
//! at start, PENDING workflows of this executor resumed on exactly the code they started on.

use std::sync::Arc;

use crate::runtime::events::RuntimeEvent;
use crate::runtime::executor::{ExecutionEnd, execute};
use crate::runtime::{RuntimeError, Shared};
use crate::store::{WorkflowEnd, WorkflowRecord, WorkflowStatus};

/// Runs a workflow until it reaches a terminal status, recovering it after every trap.
pub(crate) async fn drive(
    shared: &Arc<Shared>,
    workflow_id: &str,
) -> Result<WorkflowRecord, RuntimeError> {
    loop {
        let workflow = shared.workflow(workflow_id).await?;
        if workflow.status.is_terminal() {
            return Ok(workflow);
        }
        // One first execution plus `max_recovery_attempts` recoveries, as DBOS counts them.
        if workflow.executions > workflow.max_recovery_attempts {
            let last = workflow
                .trap_message
                .as_deref()
                .map(|m| {
                    format!(
                        " (last trap: {} — {m})",
                        workflow.trap_class.as_deref().unwrap_or("other")
                    )
                })
                .unwrap_or_default();
            let end = WorkflowEnd::MaxRecoveryAttemptsExceeded(format!(
                "workflow {workflow_id} exceeded {} recovery attempts{last}",
                workflow.max_recovery_attempts
            ));
            shared.finish(workflow_id, &end).await?;
            continue;
        }
        let component = shared.component(&workflow.app_version).await?;
        let execution = shared
            .store
            .begin_execution(workflow_id, &shared.options.executor_id)
            .await?;
        tracing::debug!(workflow_id, execution, name = %workflow.name, "execution started");
        match execute(shared, component, &workflow, execution).await? {
            ExecutionEnd::Finished(end) => shared.finish(workflow_id, &end).await?,
            ExecutionEnd::Trapped(trap) => {
                tracing::warn!(workflow_id, execution, class = %trap.class, "workflow instance trapped, recovering: {}", trap.message);
                shared
                    .store
                    .record_trap(workflow_id, trap.class.as_str(), &trap.message)
                    .await?;
                shared.emit(|| RuntimeEvent::ExecutionTrapped {
                    workflow_id: workflow_id.to_string(),
                    execution,
                    class: trap.class,
                });
            }
        }
    }
}

/// Resumes every PENDING workflow of this executor, concurrently, and waits for all of them.
pub(crate) async fn recover_pending(
    shared: &Arc<Shared>,
) -> Result<Vec<WorkflowRecord>, RuntimeError> {
    let pending = shared
        .store
        .pending_workflows(&shared.options.executor_id)
        .await?;
    tracing::info!(count = pending.len(), executor_id = %shared.options.executor_id, "recovering pending workflows");
    let mut tasks = tokio::task::JoinSet::new();
    for workflow in pending {
        let shared = shared.clone();
        tasks.spawn(async move { drive(&shared, &workflow.id).await });
    }
    let mut recovered = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let record = joined.map_err(|e| RuntimeError::Task(e.to_string()))??;
        debug_assert!(record.status != WorkflowStatus::Pending);
        recovered.push(record);
    }
    recovered.sort_by_key(|r| r.created_at);
    Ok(recovered)
}
