//! One attempt of an isolated step: a fresh instance of the workflow's component with its own
//! memory limit, so its out-of-memory, panic or trap is a step error and the workflow's
//! instance lives on.

use std::sync::Arc;
use std::time::Duration;

use crate::bindings::{AttemptInfo, StepError, WorkflowInfo};
use crate::engine::EngineError;
use crate::grants::Grants;
use crate::limits::{InstanceLimits, classify};
use crate::runtime::events::RuntimeEvent;
use crate::runtime::execution::instance::{InstanceState, LoadedComponent, Role};
use crate::runtime::execution::interrupt::ProtocolViolation;
use crate::runtime::ids::idempotency_key;
use crate::runtime::shared::Shared;
use crate::sandbox::with_refusal;
use crate::telemetry::ExecutionSpan;

/// Where an isolated attempt runs: the workflow's component and limits, for that workflow.
pub(crate) struct Instance<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) component: &'a LoadedComponent,
    pub(crate) info: &'a WorkflowInfo,
    /// Seeds the virtual clock and random: the step's position, so every attempt sees the same.
    pub(crate) seed: &'a str,
    /// The step's position in the workflow.
    pub(crate) function_id: u32,
    /// The workflow's run.
    pub(crate) run: u32,
    pub(crate) created_at: i64,
    pub(crate) limits: InstanceLimits,
    pub(crate) grants: &'a Arc<Grants>,
    /// The workflow execution's span, whose step attempt this is.
    pub(crate) trace: &'a ExecutionSpan,
}

impl Instance<'_> {
    /// Runs the attempt; every way it can fail is the step's error message, except a step the
    /// component does not export, which no attempt can fix: that stops the workflow.
    pub(crate) async fn run_attempt(
        &self,
        name: &str,
        input: Vec<u8>,
        attempt: AttemptInfo,
        timeout: Option<Duration>,
    ) -> Result<Result<Vec<u8>, String>, ProtocolViolation> {
        let host = self;
        let engine = &host.shared.engine;
        let started = async {
            let state = InstanceState::new(
                host.seed,
                host.created_at,
                host.limits.memory_bytes,
                Role::IsolatedStep {
                    info: host.info.clone(),
                    step: name.to_string(),
                    key: idempotency_key(&host.info.id, host.run, host.function_id),
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
        // A guest in a busy loop still yields to tokio every few million instructions (its
        // fuel's yield interval), so the timer fires and dropping the call ends the attempt.
        let call = guest.call_run_step(&mut store, name, &input, attempt);
        let result = match timeout {
            Some(limit) => match tokio::time::timeout(limit, call).await {
                Ok(result) => result,
                Err(_) => {
                    return Ok(Err(format!(
                        "step {name:?} timed out: attempt {} of {} was interrupted after {} ms",
                        attempt.attempt,
                        attempt.max_attempts,
                        limit.as_millis()
                    )));
                }
            },
            None => call.await,
        };
        Ok(match result {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(StepError::Failed(message))) => {
                Err(with_refusal(message, store.data().access.take_refusal()))
            }
            Ok(Err(StepError::InvalidInput(message))) => {
                Err(format!("invalid input for step {name:?}: {message}"))
            }
            Ok(Err(StepError::UnknownStep(_))) => {
                return Err(ProtocolViolation(format!(
                    "a fresh instance of the component defines no step {name:?} to run \
                         isolated (was it built without the reprise-guest SDK, or an old one?)"
                )));
            }
            Err(err) => {
                let trap = classify(&err, store.data().panic_message.as_deref());
                host.shared.metrics.isolated_trapped(trap.class);
                host.trace.attempt_trapped(trap.class);
                host.shared
                    .events
                    .emit(|| RuntimeEvent::IsolatedStepTrapped {
                        workflow_id: host.info.id.clone(),
                        name: name.to_string(),
                        class: trap.class,
                    });
                Err(format!("isolated step {name:?} trapped: {trap}"))
            }
        })
    }
}
