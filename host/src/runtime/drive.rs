//! Traps → re-instantiate and replay, bounded by the workflow's `max_recovery_attempts`; and
//! at start, PENDING workflows of this executor resumed on exactly the code they started on.

use std::sync::Arc;

use crate::runtime::events::RuntimeEvent;
use crate::runtime::executor::{ExecutionEnd, execute};
use crate::runtime::{RuntimeError, Shared};
use crate::store::{WorkflowEnd, WorkflowRecord, WorkflowStatus};

/// How a drive begins: what the caller already knows saves reads on the hot path.
pub enum Begin {
    /// Only the id is known: read the workflow, begin an execution if it is not terminal.
    Id(String),
    /// The workflow was just created (or claimed from its queue) with its first execution
    /// begun in the same commit, so it has no recorded steps.
    Created(Box<WorkflowRecord>),
}

impl Begin {
    /// The workflow's id.
    pub fn id(&self) -> &str {
        match self {
            Begin::Id(id) => id,
            Begin::Created(record) => &record.id,
        }
    }
}

/// Runs a workflow until it reaches a terminal status, recovering it after every trap.
pub(crate) async fn drive(
    shared: &Arc<Shared>,
    begin: Begin,
) -> Result<WorkflowRecord, RuntimeError> {
    let (mut workflow, mut fresh) = match begin {
        Begin::Id(id) => (shared.workflow(&id).await?, false),
        Begin::Created(record) => (*record, true),
    };
    loop {
        if workflow.status.is_terminal() {
            return Ok(workflow);
        }
        let id = workflow.id.clone();
        if !fresh {
            // One first execution plus `max_recovery_attempts` recoveries, as DBOS counts them.
            if workflow.executions > workflow.max_recovery_attempts {
                let end = WorkflowEnd::MaxRecoveryAttemptsExceeded(exceeded_message(&workflow));
                workflow = shared.finish(&id, &end).await?;
                continue;
            }
            workflow.executions = shared
                .store
                .begin_execution(&id, &shared.options.executor_id)
                .await?;
        }
        let component = shared.component(&workflow.app_version).await?;
        let steps = if fresh {
            Vec::new()
        } else {
            shared.store.steps(&id).await?
        };
        fresh = false;
        let execution = workflow.executions;
        tracing::debug!(workflow_id = %id, execution, name = %workflow.name, "execution started");
        shared.emit(|| RuntimeEvent::ExecutionStarted {
            workflow_id: id.clone(),
            execution,
        });
        let cancel = shared.register_running(&id);
        let ended = execute(shared, component, &workflow, steps, cancel).await;
        shared.unregister_running(&id);
        match ended? {
            ExecutionEnd::Finished(end) => workflow = shared.finish(&id, &end).await?,
            ExecutionEnd::Cancelled => workflow = shared.workflow(&id).await?,
            ExecutionEnd::Trapped(trap) => {
                tracing::warn!(workflow_id = %id, execution, class = %trap.class, "workflow instance trapped, recovering: {}", trap.message);
                shared
                    .store
                    .record_trap(&id, trap.class.as_str(), &trap.message)
                    .await?;
                shared.metrics.trapped(trap.class);
                shared.emit(|| RuntimeEvent::ExecutionTrapped {
                    workflow_id: id.clone(),
                    execution,
                    class: trap.class,
                });
                workflow.trap_class = Some(trap.class.as_str().to_string());
                workflow.trap_message = Some(trap.message);
            }
        }
    }
}

fn exceeded_message(workflow: &WorkflowRecord) -> String {
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
    format!(
        "workflow {} exceeded {} recovery attempts{last}",
        workflow.id, workflow.max_recovery_attempts
    )
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
        tasks.spawn(async move { drive(&shared, Begin::Id(workflow.id)).await });
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
