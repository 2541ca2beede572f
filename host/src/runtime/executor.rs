//! One execution of one workflow: instantiate, call the export, classify how it ended.
//! Whether to try again is recovery's business, not this file's.

use std::sync::Arc;

use crate::bindings::{WorkflowError, WorkflowInfo};
use crate::engine::LoadedComponent;
use crate::limits::{ClassifiedTrap, classify};
use tokio_util::sync::CancellationToken;

use crate::runtime::durable::{
    Cancelled, HostFailure, ProtocolViolation, Role, WorkflowContext, checked_json,
};
use crate::runtime::history::{History, NonDeterminism};
use crate::runtime::{RuntimeError, Shared};
use crate::sandbox::HostState;
use crate::store::{StepRecord, WorkflowEnd, WorkflowRecord};

/// How an execution ended.
#[derive(Debug)]
pub(crate) enum ExecutionEnd {
    /// The workflow returned (or failed in a way replay cannot fix).
    Finished(WorkflowEnd),
    /// The instance trapped; the workflow stays PENDING.
    Trapped(ClassifiedTrap),
    /// The workflow was cancelled while it ran; its status already says so.
    Cancelled,
}

/// Runs the workflow's current execution (`workflow.executions`, 1-based) on its component,
/// replaying `steps`.
pub(crate) async fn execute(
    shared: &Arc<Shared>,
    component: Arc<LoadedComponent>,
    workflow: &WorkflowRecord,
    steps: Vec<StepRecord>,
    cancel: CancellationToken,
) -> Result<ExecutionEnd, RuntimeError> {
    let instance = shared.instance(&workflow.instance);
    let info = WorkflowInfo {
        id: workflow.id.clone(),
        name: workflow.name.clone(),
        recovery_attempt: workflow.executions.saturating_sub(1),
        executor_id: shared.options.executor_id.clone(),
        app_version: workflow.app_version.clone(),
        instance: workflow.instance.clone(),
        config: serde_json::from_str::<std::collections::BTreeMap<String, String>>(
            &workflow.config,
        )
        .unwrap_or_default()
        .into_iter()
        .collect(),
    };
    let context = WorkflowContext::new(
        shared.clone(),
        component.clone(),
        info,
        workflow.created_at,
        History::new(&workflow.id, steps),
        instance.limits,
        cancel,
    );
    let limits = instance.limits;
    let state = HostState::new(
        &workflow.id,
        workflow.created_at,
        limits.memory_bytes,
        Role::Workflow(Box::new(context)),
    );
    let mut store = shared.engine.store(state, limits.fuel)?;
    let guest = shared.engine.instantiate(&component, &mut store).await?;
    let result = guest
        .call_run_workflow(
            &mut store,
            &workflow.name,
            &workflow.input.clone().into_bytes(),
        )
        .await;
    let end = match result {
        Ok(Ok(output)) => match checked_json(output, limits.max_output_bytes, "workflow") {
            Ok(text) => WorkflowEnd::Success(text),
            Err(message) => WorkflowEnd::Error(message),
        },
        Ok(Err(WorkflowError::Failed(message))) => WorkflowEnd::Error(message),
        Ok(Err(WorkflowError::InvalidInput(message))) => WorkflowEnd::Error(format!(
            "invalid input for workflow {:?}: {message}",
            workflow.name
        )),
        Ok(Err(WorkflowError::UnknownWorkflow(name))) => {
            WorkflowEnd::Error(format!("component defines no workflow named {name:?}"))
        }
        Err(err) => {
            if err.downcast_ref::<Cancelled>().is_some() {
                return Ok(ExecutionEnd::Cancelled);
            }
            if let Some(failure) = err.downcast_ref::<HostFailure>() {
                return Err(RuntimeError::Checkpoint(failure.to_string()));
            }
            if let Some(nondeterminism) = err.downcast_ref::<NonDeterminism>() {
                WorkflowEnd::Error(nondeterminism.to_string())
            } else if let Some(violation) = err.downcast_ref::<ProtocolViolation>() {
                // Deterministic: replaying would only repeat it.
                WorkflowEnd::Error(violation.to_string())
            } else {
                let panic = store.data().panic_message.clone();
                return Ok(ExecutionEnd::Trapped(classify(&err, panic.as_deref())));
            }
        }
    };
    Ok(ExecutionEnd::Finished(end))
}
