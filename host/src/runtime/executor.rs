//! One execution of one workflow: instantiate, call the export, classify how it ended.
//! Whether to try again is the drive's business, not this file's.

use crate::bindings::WorkflowError;
use crate::engine::EngineError;
use crate::limits::{ClassifiedTrap, classify};
use crate::runtime::abort::{Cancelled, HostFailure, ProtocolViolation};
use crate::runtime::context::WorkflowContext;
use crate::runtime::error::RuntimeError;
use crate::runtime::history::NonDeterminism;
use crate::runtime::instance::{HostState, LoadedComponent, Role, WorkflowEngine};
use crate::runtime::park::{Parked, Wake};
use crate::runtime::step::checked_json;
use crate::sandbox::with_refusal;
use crate::store::{WorkflowEnd, WorkflowRecord};

/// How an execution ended.
#[derive(Debug)]
pub(crate) enum ExecutionEnd {
    /// The workflow returned (or failed in a way replay cannot fix).
    Finished(WorkflowEnd),
    /// The instance trapped; the workflow stays PENDING.
    Trapped(ClassifiedTrap),
    /// The workflow was cancelled while it ran; its status already says so.
    Cancelled,
    /// The workflow waits for `Wake` and gave back its instance; a replay resumes it.
    Parked(Wake),
}

/// Runs `workflow` on a fresh instance of `component` whose durable calls go to `context`.
pub(crate) async fn execute(
    engine: &WorkflowEngine,
    component: &LoadedComponent,
    workflow: &WorkflowRecord,
    context: WorkflowContext,
) -> Result<ExecutionEnd, RuntimeError> {
    let limits = context.limits;
    let cancel = context.cancel.clone();
    let grants = context.grants.clone();
    let state = HostState::new(
        &workflow.id,
        workflow.created_at,
        limits.memory_bytes,
        Role::Workflow(Box::new(context)),
        grants,
        &workflow.instance,
    )
    .map_err(|e| EngineError::Instantiate(e.to_string()))?;
    let mut store = engine.store(state, limits.fuel)?;
    let guest = engine.instantiate(component, &mut store).await?;
    let input = workflow.input.clone().into_bytes();
    // A cancel also interrupts code that blocks between durable calls (a step sleeping or
    // waiting on I/O): the call is dropped, and with it the instance.
    let result = tokio::select! {
        result = guest.call_run_workflow(&mut store, &workflow.name, &input) => result,
        _ = cancel.cancelled() => return Ok(ExecutionEnd::Cancelled),
    };
    let end = match result {
        Ok(Ok(output)) => match checked_json(output, limits.max_output_bytes, "workflow") {
            Ok(text) => WorkflowEnd::Success(text),
            Err(message) => WorkflowEnd::Error(message),
        },
        Ok(Err(WorkflowError::Failed(message))) => {
            WorkflowEnd::Error(with_refusal(message, store.data().access.take_refusal()))
        }
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
            let err = match err.downcast::<Parked>() {
                Ok(Parked(wake)) => return Ok(ExecutionEnd::Parked(wake)),
                Err(err) => err,
            };
            let err = match err.downcast::<HostFailure>() {
                Ok(HostFailure(cause)) => return Err(RuntimeError::Checkpoint(cause)),
                Err(err) => err,
            };
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
