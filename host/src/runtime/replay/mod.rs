//! Replaying a stored workflow with nothing executed: its recorded history handed to a
//! component (its own version, or new code) in a fresh instance with no grants, up to the
//! first call nothing is recorded for. What `reprise replay` prints and what `upgrade-check`
//! runs for every workflow in flight.

pub mod bundle;
pub mod check;
mod dry;
pub mod moving;
pub(crate) mod newest;
pub mod patches;

use std::sync::Arc;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::bindings::WorkflowError;
use crate::grants::Grants;
use crate::limits::{InstanceLimits, classify};
use crate::runtime::error::RuntimeError;
use crate::runtime::execution::context::WorkflowContext;
use crate::runtime::execution::history::{Divergence, History, NonDeterminism};
use crate::runtime::execution::instance::{LoadedComponent, Role, WorkflowEngine};
use crate::runtime::execution::interrupt::Interrupt;
use crate::runtime::execution::{Called, call, unconsumed};
use crate::runtime::shared::{Shared, workflow_info};
use reprise_protocol::recorded;
use reprise_store::{StepRecord, WorkflowRecord};

pub use crate::runtime::execution::context::{DryRun, GuestLine};

/// What the code would do after the last recorded position.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "does", rename_all = "snake_case")]
pub enum Next {
    /// Make this call, at this position (a sleep still running is a call `reprise.sleep until
    /// <ms>`).
    Call {
        /// The position it would be recorded at.
        position: u32,
        /// Its kind (`step`, `recv`, …).
        kind: &'static str,
        /// The name it would be recorded under.
        name: String,
    },
    /// Return this output (JSON text).
    Return {
        /// JSON text.
        output: String,
    },
    /// Fail with this error.
    Fail {
        /// The workflow's error.
        error: String,
    },
    /// End this run and start again with this input (JSON text).
    ContinueAsNew {
        /// The next run's input.
        input: String,
    },
}

/// How a dry replay ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Every recorded position replayed; then the code would do `next`.
    Clean {
        /// What it would do next.
        next: Next,
    },
    /// At `position` the code asks for another call, or the same call with other arguments.
    Diverged {
        /// Where.
        position: u32,
        /// The recorded call (its name, and its arguments' digest when stored).
        recorded: String,
        /// The call the code makes there.
        requested: String,
        /// The whole explanation.
        message: String,
    },
    /// The code ended at `position` with `left` recorded positions not replayed.
    Unconsumed {
        /// Where the code ended.
        position: u32,
        /// How many recorded positions were left.
        left: usize,
        /// The first of them.
        recorded: String,
        /// The whole explanation.
        message: String,
    },
    /// The instance trapped; `backtrace` names the guest's frames, innermost first.
    Trap {
        /// The trap's class (`panic`, `out_of_memory`, …).
        class: String,
        /// What happened.
        message: String,
        /// The guest's frames, innermost first.
        backtrace: Vec<String>,
    },
    /// The recorded input no longer decodes, or the component no longer has the workflow.
    Signature {
        /// Which.
        message: String,
    },
}

impl Verdict {
    /// Whether the code replays the whole history.
    pub fn is_clean(&self) -> bool {
        matches!(self, Verdict::Clean { .. })
    }

    /// The verdict's name as `--json` writes it.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Clean { .. } => "clean",
            Verdict::Diverged { .. } => "diverged",
            Verdict::Unconsumed { .. } => "unconsumed",
            Verdict::Trap { .. } => "trap",
            Verdict::Signature { .. } => "signature",
        }
    }
}

/// A dry replay's verdict, and what the guest logged on the way.
#[derive(Debug, Clone)]
pub struct Replay {
    /// How it ended.
    pub verdict: Verdict,
    /// What the guest logged and which patch branches it took.
    pub seen: DryRun,
}

/// A stored workflow replayed: its row, its history, the version replayed on, the verdict.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// The workflow's row.
    pub workflow: WorkflowRecord,
    /// Its recorded history (up to `until`).
    pub steps: Vec<StepRecord>,
    /// The digest of the component it was replayed on.
    pub component: String,
    /// What the replay found.
    pub replay: Replay,
}

/// Replays stored workflow `id` on its own version or on `to`, up to position `until`.
pub(crate) async fn replay_stored(
    shared: &Arc<Shared>,
    id: &str,
    to: Option<Arc<LoadedComponent>>,
    until: Option<u32>,
) -> Result<Replayed, RuntimeError> {
    let workflow = shared.workflow(id).await?;
    let (component, steps, replay) = replay_on(shared, &workflow, until, to).await?;
    Ok(Replayed {
        workflow,
        steps,
        component: component.digest.clone(),
        replay,
    })
}

/// Replays stored `workflow`'s history (its positions before `until`) on `to`, or on the
/// version it runs on, under its limits: the component it replayed on, the positions it
/// replayed, and what it found.
pub(super) async fn replay_on(
    shared: &Arc<Shared>,
    workflow: &WorkflowRecord,
    until: Option<u32>,
    to: Option<Arc<LoadedComponent>>,
) -> Result<(Arc<LoadedComponent>, Vec<StepRecord>, Replay), RuntimeError> {
    let component = match to {
        Some(component) => component,
        None => shared.component(&workflow.app_version).await?,
    };
    let mut steps = shared.store.steps(&workflow.id).await?;
    if let Some(until) = until {
        steps.retain(|step| step.function_id < until);
    }
    let limits = shared.limits(workflow);
    let replay = dry_replay(&shared.engine, &component, workflow, steps.clone(), limits).await?;
    Ok((component, steps, replay))
}

/// Replays `workflow`'s recorded `steps` on `component` with nothing executed, under `limits`.
pub(crate) async fn dry_replay(
    engine: &WorkflowEngine,
    component: &LoadedComponent,
    workflow: &WorkflowRecord,
    steps: Vec<StepRecord>,
    limits: InstanceLimits,
) -> Result<Replay, RuntimeError> {
    let info = workflow_info(workflow, "replay", &component.digest)?;
    let mut context = WorkflowContext::new(
        Arc::new(dry::Nothing::default()),
        info,
        workflow.epoch,
        History::new(&workflow.id, steps),
        limits,
        Arc::new(Grants::default()),
        CancellationToken::new(),
    );
    context.dry_run = Some(DryRun::default());
    let called = match call(engine, component, workflow, context).await? {
        Ok(called) => called,
        Err(trap) => {
            let verdict = Verdict::Trap {
                class: trap.class.to_string(),
                message: trap.message,
                backtrace: Vec::new(),
            };
            return Ok(Replay {
                verdict,
                seen: DryRun::default(),
            });
        }
    };
    let verdict = verdict_of(workflow, &called);
    let Called { mut store, .. } = called;
    let seen = match &mut store.data_mut().role {
        Role::Workflow(ctx) => ctx.dry_run.take().unwrap_or_default(),
        _ => DryRun::default(),
    };
    Ok(Replay { verdict, seen })
}

/// How the call into the guest ended, as a verdict.
fn verdict_of(workflow: &WorkflowRecord, called: &Called) -> Verdict {
    let left = || unconsumed(&called.store);
    match &called.result {
        Ok(Ok(_) | Err(WorkflowError::Failed(_))) if let Some(diverged) = left() => {
            diverged_verdict(diverged)
        }
        Ok(Ok(output)) => Verdict::Clean {
            next: Next::Return {
                output: String::from_utf8_lossy(output).into_owned(),
            },
        },
        Ok(Err(WorkflowError::Failed(error))) => Verdict::Clean {
            next: Next::Fail {
                error: error.clone(),
            },
        },
        Ok(Err(WorkflowError::InvalidInput(message))) => Verdict::Signature {
            message: format!(
                "the recorded input of workflow {:?} no longer decodes: {message}",
                workflow.name
            ),
        },
        Ok(Err(WorkflowError::UnknownWorkflow(name))) => Verdict::Signature {
            message: format!("the component no longer defines workflow {name:?}"),
        },
        Err(err) => match err.downcast_ref::<Interrupt>() {
            Some(Interrupt::Frontier(at)) => Verdict::Clean {
                next: Next::Call {
                    position: at.function_id,
                    kind: recorded::kind_of(&at.name).as_str(),
                    name: at.name.clone(),
                },
            },
            Some(Interrupt::NonDeterminism(diverged)) => diverged_verdict(diverged.clone()),
            Some(Interrupt::ContinueAsNew(input)) => match left() {
                Some(diverged) => diverged_verdict(diverged),
                None => Verdict::Clean {
                    next: Next::ContinueAsNew {
                        input: input.clone(),
                    },
                },
            },
            // A recorded row that does not decode.
            Some(Interrupt::HostFailure(cause)) => Verdict::Trap {
                class: "corrupt_history".into(),
                message: cause.to_string(),
                backtrace: Vec::new(),
            },
            Some(Interrupt::Violation(violation)) => Verdict::Trap {
                class: "protocol_violation".into(),
                message: violation.to_string(),
                backtrace: Vec::new(),
            },
            // A dry replay neither parks nor is cancelled: each stops at its frontier first.
            Some(other @ (Interrupt::Parked(_) | Interrupt::Cancelled)) => Verdict::Trap {
                class: "other".into(),
                message: other.to_string(),
                backtrace: Vec::new(),
            },
            None => {
                let panic = called.store.data().panic_message.clone();
                let trap = classify(err, panic.as_deref());
                Verdict::Trap {
                    class: trap.class.to_string(),
                    message: trap.message,
                    backtrace: backtrace(err),
                }
            }
        },
    }
}

fn diverged_verdict(diverged: NonDeterminism) -> Verdict {
    let message = diverged.to_string();
    match diverged.divergence {
        Divergence::Unconsumed { left } => Verdict::Unconsumed {
            position: diverged.function_id,
            left,
            recorded: diverged.recorded,
            message,
        },
        Divergence::Call | Divergence::Arguments => Verdict::Diverged {
            position: diverged.function_id,
            recorded: diverged.recorded,
            requested: diverged.requested,
            message,
        },
    }
}

/// The guest's frames of a trap, innermost first, by the names in the component's name
/// section (the guests' release profile keeps it).
fn backtrace(err: &wasmtime::Error) -> Vec<String> {
    let Some(trace) = err.downcast_ref::<wasmtime::WasmBacktrace>() else {
        return Vec::new();
    };
    trace
        .frames()
        .iter()
        .map(|frame| match frame.func_name() {
            // `{:#}` leaves out the hash legacy-mangled names end with.
            Some(name) => format!("{:#}", rustc_demangle::demangle(name)),
            None => format!("<wasm function {}>", frame.func_index()),
        })
        .collect()
}
