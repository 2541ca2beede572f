//! One attempt of an isolated step: a fresh instance of the workflow's component with its own
//! memory limit, so its out-of-memory, panic or trap is a step error and the workflow's
//! instance lives on.

use std::sync::Arc;

use crate::bindings::{AttemptInfo, StepError, WorkflowInfo};
use crate::engine::EngineError;
use crate::grants::Grants;
use crate::limits::{InstanceLimits, classify};
use crate::runtime::abort::ProtocolViolation;
use crate::runtime::events::RuntimeEvent;
use crate::runtime::instance::{HostState, LoadedComponent, Role};
use crate::runtime::shared::Shared;
use crate::sandbox::with_refusal;

/// Where an isolated attempt runs: the workflow's component and limits, for that workflow.
pub(crate) struct Instance<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) component: &'a LoadedComponent,
    pub(crate) info: &'a WorkflowInfo,
    /// Seeds the virtual clock and random: the step's position, so every attempt sees the same.
    pub(crate) seed: &'a str,
    pub(crate) created_at: i64,
    pub(crate) limits: InstanceLimits,
    pub(crate) grants: &'a Arc<Grants>,
}

impl Instance<'_> {
    /// Runs the attempt; every way it can fail is the step's error message, except a step the
    /// component does not export, which no attempt can fix: that stops the workflow.
    pub(crate) async fn run_attempt(
        &self,
        name: &str,
        input: Vec<u8>,
        attempt: AttemptInfo,
    ) -> Result<Result<Vec<u8>, String>, ProtocolViolation> {
        let host = self;
        let engine = &host.shared.engine;
        let started = async {
            let state = HostState::new(
                host.seed,
                host.created_at,
                host.limits.memory_bytes,
                Role::IsolatedStep {
                    info: host.info.clone(),
                },
                host.grants.clone(),
                &host.info.instance,
            )
            .map_err(|e| EngineError::Instantiate(e.to_string()))?;
            let mut store = engine.store(state, host.limits.fuel)?;
            let guest = engine.instantiate(host.component, &mut store).await?;
            Ok::<_, EngineError>((store, guest))
        };
        let (mut store, guest) = match started.await {
            Ok(started) => started,
            Err(err) => {
                return Ok(Err(format!(
                    "isolated step {name:?} could not start: {err}"
                )));
            }
        };
        Ok(
            match guest.call_run_step(&mut store, name, &input, attempt).await {
                Ok(Ok(output)) => Ok(output),
                Ok(Err(StepError::Failed(message))) => {
                    Err(with_refusal(message, store.data().access.take_refusal()))
                }
                Ok(Err(StepError::InvalidInput(message))) => {
                    Err(format!("invalid input for step {name:?}: {message}"))
                }
                Ok(Err(StepError::UnknownStep(_))) => {
                    return Err(ProtocolViolation(format!(
                        "isolated step {name:?} is not listed in the component's export! steps: a \
                     fresh instance cannot find it; add it to export!(steps = [...])"
                    )));
                }
                Err(err) => {
                    let trap = classify(&err, store.data().panic_message.as_deref());
                    host.shared.metrics.isolated_trapped(trap.class);
                    host.shared
                        .events
                        .emit(|| RuntimeEvent::IsolatedStepTrapped {
                            workflow_id: host.info.id.clone(),
                            name: name.to_string(),
                            class: trap.class,
                        });
                    Err(format!("isolated step {name:?} trapped: {trap}"))
                }
            },
        )
    }
}
