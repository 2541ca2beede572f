//! One execution of one workflow: instantiate, call the export, classify how it ended; and
//! the durable calls its code makes meanwhile. Whether to try again is the drive's business.

pub(crate) mod context;
pub(crate) mod durable;
pub(crate) mod history;
pub(crate) mod instance;
pub(crate) mod interrupt;
pub(crate) mod isolated;
pub(crate) mod services;
pub(crate) mod step;

use crate::bindings::WorkflowError;
use crate::engine::EngineError;
use crate::limits::{ClassifiedTrap, classify};
use crate::runtime::error::RuntimeError;
use crate::runtime::execution::context::WorkflowContext;
use crate::runtime::execution::instance::{InstanceState, LoadedComponent, Role, WorkflowEngine};
use crate::runtime::execution::interrupt::Interrupt;
use crate::runtime::execution::step::checked_json;
use crate::runtime::waiting::wake::Wake;
use crate::sandbox::with_refusal;
use reprise_store::{WorkflowEnd, WorkflowRecord};

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
    /// The workflow ends this run and starts again with this input (JSON text).
    ContinuedAsNew(String),
}

/// What a call into a fresh instance gave: the guest's answer, or a trap that stopped it
/// before it ran (a memory limit below the component's first memory); and the store, to read
/// what the instance left behind.
pub(crate) struct Called {
    pub(crate) result: wasmtime::Result<Result<Vec<u8>, WorkflowError>>,
    pub(crate) store: wasmtime::Store<InstanceState>,
}

/// Runs `workflow`'s export on a fresh instance of `component` whose durable calls go to
/// `context`.
pub(crate) async fn call(
    engine: &WorkflowEngine,
    component: &LoadedComponent,
    workflow: &WorkflowRecord,
    context: WorkflowContext,
) -> Result<Result<Called, ClassifiedTrap>, RuntimeError> {
    let limits = context.limits;
    let grants = context.grants.clone();
    let state = InstanceState::new(
        &workflow.id,
        workflow.created_at,
        limits.memory_bytes,
        Role::Workflow(Box::new(context)),
        grants,
        &workflow.instance,
    )
    .map_err(|e| EngineError::Instantiate(e.to_string()))?;
    let mut store = engine.store(state, limits.fuel)?;
    let guest = match engine.instantiate(component, &mut store).await {
        Ok(guest) => guest,
        // A limit below the component's first memory: bounded like any out-of-memory.
        Err(EngineError::OutOfMemoryAtStart(trap)) => return Ok(Err(trap)),
        Err(err) => return Err(err.into()),
    };
    let input = workflow.input.clone().into_bytes();
    let result = guest
        .call_run_workflow(&mut store, &workflow.name, &input)
        .await;
    Ok(Ok(Called { result, store }))
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
    // A cancel also interrupts code that blocks between durable calls (a step sleeping or
    // waiting on I/O): the call is dropped, and with it the instance.
    let called = tokio::select! {
        called = call(engine, component, workflow, context) => called?,
        _ = cancel.cancelled() => return Ok(ExecutionEnd::Cancelled),
    };
    let Called { result, store } = match called {
        Ok(called) => called,
        Err(trap) => return Ok(ExecutionEnd::Trapped(trap)),
    };
    let end = match result {
        // Ending with recorded positions not replayed: the code changed under the workflow.
        Ok(Ok(_) | Err(WorkflowError::Failed(_))) if let Some(diverged) = unconsumed(&store) => {
            WorkflowEnd::Error(diverged.to_string())
        }
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
        Err(err) => match err.downcast::<Interrupt>() {
            Ok(Interrupt::Cancelled) => return Ok(ExecutionEnd::Cancelled),
            Ok(Interrupt::Parked(wake)) => return Ok(ExecutionEnd::Parked(wake)),
            Ok(Interrupt::HostFailure(cause)) => return Err(RuntimeError::Checkpoint(cause)),
            // Deterministic: replaying would only repeat them.
            Ok(Interrupt::NonDeterminism(err)) => WorkflowEnd::Error(err.to_string()),
            Ok(Interrupt::Violation(err)) => WorkflowEnd::Error(err.to_string()),
            Ok(Interrupt::ContinueAsNew(input)) => match unconsumed(&store) {
                Some(diverged) => WorkflowEnd::Error(diverged.to_string()),
                None => return Ok(ExecutionEnd::ContinuedAsNew(input)),
            },
            // Only dry replays stop at their frontier; they do not come through here.
            Ok(Interrupt::Frontier(at)) => {
                return Err(RuntimeError::Task(format!(
                    "a live execution stopped at {at:?}"
                )));
            }
            Err(trap) => {
                let panic = store.data().panic_message.clone();
                return Ok(ExecutionEnd::Trapped(classify(&trap, panic.as_deref())));
            }
        },
    };
    Ok(ExecutionEnd::Finished(end))
}

/// The divergence of a workflow that ended with recorded positions left to replay.
pub(crate) fn unconsumed(
    store: &wasmtime::Store<InstanceState>,
) -> Option<history::NonDeterminism> {
    match &store.data().role {
        Role::Workflow(ctx) => ctx.history.unconsumed("ended"),
        _ => None,
    }
}
