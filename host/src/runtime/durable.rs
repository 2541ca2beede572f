//! The host side of the WIT `durable` interface — the only bridge from guest calls to the
//! store. Every outcome is committed here before the guest sees it.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::bindings::reprise::workflow::{durable, types};
use crate::bindings::{
    AttemptInfo, ChildFailure, ChildOptions, LogLevel, StepEnd, StepError, StepFailure,
    StepOptions, StepOutcome, StepStart, WorkflowInfo,
};
use crate::engine::LoadedComponent;
use crate::limits::{InstanceLimits, classify};
use crate::runtime::events::RuntimeEvent;
use crate::runtime::history::{History, Position};
use crate::runtime::{Begin, RuntimeError, Shared, StartRequest};
use crate::sandbox::HostState;
use crate::store::{StepFailureRecord, StepRecord, StoreError, WorkflowStatus, now_ms};

/// What an instance is for; decides which durable calls it may make.
pub enum Role {
    /// Runs a workflow: durable calls are checkpointed.
    Workflow(Box<WorkflowContext>),
    /// Runs one attempt of an isolated step for the workflow described by `info`.
    IsolatedStep { info: WorkflowInfo },
    /// Lists definitions; makes no durable calls.
    Inspect,
}

/// A workflow execution's durable state.
pub struct WorkflowContext {
    pub(crate) shared: Arc<Shared>,
    pub(crate) component: Arc<LoadedComponent>,
    pub(crate) info: WorkflowInfo,
    pub(crate) created_at: i64,
    pub(crate) history: History,
    pub(crate) limits: InstanceLimits,
    cancel: CancellationToken,
    pending: Option<PendingStep>,
}

impl WorkflowContext {
    pub(crate) fn new(
        shared: Arc<Shared>,
        component: Arc<LoadedComponent>,
        info: WorkflowInfo,
        created_at: i64,
        history: History,
        limits: InstanceLimits,
        cancel: CancellationToken,
    ) -> Self {
        WorkflowContext {
            shared,
            component,
            info,
            created_at,
            history,
            limits,
            cancel,
            pending: None,
        }
    }

    /// Stops the execution at a durable call once the workflow is cancelled.
    fn check_cancelled(&self) -> wasmtime::Result<()> {
        if self.cancel.is_cancelled() {
            return Err(wasmtime::Error::new(Cancelled));
        }
        Ok(())
    }

    /// Waits for `work` unless the workflow is cancelled first.
    async fn unless_cancelled<T>(&self, work: impl Future<Output = T>) -> wasmtime::Result<T> {
        tokio::select! {
            value = work => Ok(value),
            _ = self.cancel.cancelled() => Err(wasmtime::Error::new(Cancelled)),
        }
    }

    fn event(&self, event: impl FnOnce(String) -> RuntimeEvent) {
        self.shared.emit(|| event(self.info.id.clone()));
    }

    /// Commits a step outcome; a store failure ends the execution (the workflow stays PENDING).
    async fn record(&self, step: StepRecord) -> wasmtime::Result<()> {
        let started = Instant::now();
        self.shared
            .store
            .record_step(&step)
            .await
            .map_err(|e| wasmtime::Error::new(HostFailure(e)))?;
        self.shared.metrics.checkpoint(started.elapsed());
        Ok(())
    }

    /// Records (or replays) a value the workflow must see identically on replay: the clock,
    /// random numbers, a sleep's wake-up time, a child's id or result. `produce` runs only
    /// when nothing is recorded at this position; it gets the position.
    async fn recorded<T, F, Fut>(&mut self, name: &str, produce: F) -> wasmtime::Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(u32) -> Fut,
        Fut: Future<Output = wasmtime::Result<T>>,
    {
        self.check_cancelled()?;
        if let Some(outer) = &self.pending {
            return Err(violation(format!(
                "{name} was called inside step {:?}; only workflow code may make durable calls",
                outer.name
            )));
        }
        match self.history.claim(name).map_err(wasmtime::Error::new)? {
            Position::Replay(step) => {
                self.shared.metrics.step_replayed();
                let text = step.output.as_deref().unwrap_or("null");
                serde_json::from_str(text).map_err(|e| {
                    wasmtime::Error::new(HostFailure(StoreError::Corrupt {
                        table: "operation_outputs",
                        message: format!("{name} at {}: {e}", step.function_id),
                    }))
                })
            }
            Position::Execute(function_id) => {
                let started_at = now_ms();
                let value = produce(function_id).await?;
                let output = serde_json::to_string(&value).map_err(|e| {
                    violation(format!("{name} produced a value that is not JSON: {e}"))
                })?;
                self.record(StepRecord {
                    workflow_id: self.info.id.clone(),
                    function_id,
                    name: name.to_string(),
                    output: Some(output),
                    error: None,
                    attempts: 1,
                    started_at,
                    completed_at: now_ms(),
                })
                .await?;
                Ok(value)
            }
        }
    }
}

/// The workflow was cancelled: the execution stops at this durable call.
#[derive(Debug, thiserror::Error)]
#[error("workflow was cancelled")]
pub struct Cancelled;

/// How a child's end is recorded in the parent's history: `{"ok": output}` or
/// `{"err": {"status": …, "message": …}}`.
#[derive(Debug, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum ChildResult {
    Ok(serde_json::Value),
    Err { status: String, message: String },
}

/// Creates a child workflow (or finds the one a crashed execution created with the same id)
/// and makes sure it runs. Bad requests become the guest's error; store failures are ours.
async fn start_child_workflow(
    shared: &Arc<Shared>,
    component: &LoadedComponent,
    request: StartRequest,
) -> wasmtime::Result<Result<String, String>> {
    match shared.submit(component, request, true).await {
        Ok(inserted) => {
            let child = inserted.record;
            let unqueued = child.queue_name.is_none();
            if inserted.created && unqueued {
                shared.spawn_drive(Begin::Created(Box::new(child.clone())));
            } else if !inserted.created
                && unqueued
                && child.status == WorkflowStatus::Pending
                && !shared.is_running(&child.id)
            {
                // Created by an execution that crashed before recording the start.
                shared.spawn_drive(Begin::Id(child.id.clone()));
            }
            Ok(Ok(child.id))
        }
        Err(RuntimeError::Store(err @ StoreError::Duplicate { .. })) => Ok(Err(err.to_string())),
        Err(RuntimeError::Store(err)) => Err(wasmtime::Error::new(HostFailure(err))),
        Err(err) => Ok(Err(err.to_string())),
    }
}

/// A store failure inside a durable call: not the guest's fault, so not a trap to recover.
#[derive(Debug, thiserror::Error)]
#[error("checkpoint failed: {0}")]
pub struct HostFailure(pub StoreError);

/// The guest broke the step protocol (a bug in a hand-written guest, not in user workflows).
#[derive(Debug, thiserror::Error)]
#[error("guest protocol violation: {0}")]
pub struct ProtocolViolation(pub String);

/// A step between begin-step and its final end-step.
struct PendingStep {
    function_id: u32,
    name: String,
    options: StepOptions,
    max_attempts: u32,
    attempt: u32,
    errors: Vec<String>,
    started_at: i64,
}

impl PendingStep {
    fn attempt_info(&self) -> AttemptInfo {
        AttemptInfo {
            attempt: self.attempt,
            max_attempts: self.max_attempts,
        }
    }

    /// DBOS's backoff: interval × rate^(attempt − 1).
    fn backoff(&self) -> Duration {
        let retry = &self.options.retry;
        let factor = retry
            .backoff_rate
            .max(0.0)
            .powi(self.attempt.saturating_sub(1) as i32);
        let ms = (retry.interval_ms as f64 * factor).clamp(0.0, 24.0 * 3600.0 * 1000.0);
        Duration::from_millis(ms as u64)
    }
}

fn violation(message: String) -> wasmtime::Error {
    wasmtime::Error::new(ProtocolViolation(message))
}

fn outcome_of(step: StepRecord) -> StepOutcome {
    match (step.output, step.error) {
        (Some(value), _) => StepOutcome::Value(value.into_bytes()),
        (None, Some(failure)) => StepOutcome::Failed(StepFailure {
            message: failure.message,
            attempt_errors: failure.attempt_errors,
            retries_exhausted: failure.retries_exhausted,
        }),
        (None, None) => StepOutcome::Value(b"null".to_vec()),
    }
}

/// Checks a guest-produced value: valid UTF-8 JSON within the output cap.
pub(crate) fn checked_json(bytes: Vec<u8>, cap: u64, what: &str) -> Result<String, String> {
    if bytes.len() as u64 > cap {
        return Err(format!(
            "{what} output of {} bytes exceeds the limit of {cap} bytes",
            bytes.len()
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| format!("{what} output is not UTF-8"))?;
    serde_json::from_str::<serde::de::IgnoredAny>(&text)
        .map_err(|e| format!("{what} output is not valid JSON: {e}"))?;
    Ok(text)
}

impl HostState {
    fn workflow(&mut self, call: &str) -> wasmtime::Result<&mut WorkflowContext> {
        match &mut self.role {
            Role::Workflow(ctx) => Ok(ctx),
            _ => Err(violation(format!(
                "{call} is only available inside a workflow"
            ))),
        }
    }

    fn in_step(&self) -> bool {
        matches!(&self.role, Role::Workflow(ctx) if ctx.pending.is_some())
            || matches!(self.role, Role::IsolatedStep { .. })
    }
}

impl types::Host for HostState {}

impl durable::Host for HostState {
    async fn begin_step(
        &mut self,
        name: String,
        options: StepOptions,
    ) -> wasmtime::Result<StepStart> {
        let ctx = self.workflow("begin-step")?;
        ctx.check_cancelled()?;
        if let Some(outer) = &ctx.pending {
            return Err(violation(format!(
                "step {name:?} was called inside step {:?}; steps cannot nest",
                outer.name
            )));
        }
        match ctx.history.claim(&name).map_err(wasmtime::Error::new)? {
            Position::Replay(step) => {
                let function_id = step.function_id;
                ctx.shared.metrics.step_replayed();
                ctx.event(|workflow_id| RuntimeEvent::StepReplayed {
                    workflow_id,
                    function_id,
                    name: name.clone(),
                });
                Ok(StepStart::Replay(outcome_of(step)))
            }
            Position::Execute(function_id) => {
                let max_attempts = if options.retry.retries_allowed {
                    options.retry.max_attempts.max(1)
                } else {
                    1
                };
                let pending = PendingStep {
                    function_id,
                    name,
                    options,
                    max_attempts,
                    attempt: 1,
                    errors: Vec::new(),
                    started_at: now_ms(),
                };
                let info = pending.attempt_info();
                ctx.shared.metrics.step_executed();
                ctx.event(|workflow_id| RuntimeEvent::StepExecuting {
                    workflow_id,
                    function_id,
                    name: pending.name.clone(),
                    attempt: 1,
                });
                ctx.pending = Some(pending);
                Ok(StepStart::Execute(info))
            }
        }
    }

    async fn end_step(&mut self, output: Result<Vec<u8>, String>) -> wasmtime::Result<StepEnd> {
        let ctx = self.workflow("end-step")?;
        let cap = ctx.limits.max_output_bytes;
        let Some(mut pending) = ctx.pending.take() else {
            return Err(violation("end-step without begin-step".into()));
        };
        let attempt =
            output.and_then(|bytes| checked_json(bytes, cap, &format!("step {:?}", pending.name)));
        let (output, error) = match attempt {
            Ok(value) => (Some(value), None),
            Err(message) => {
                pending.errors.push(message.clone());
                if pending.attempt < pending.max_attempts {
                    let delay = pending.backoff();
                    tracing::info!(
                        workflow_id = %ctx.info.id, step = %pending.name, attempt = pending.attempt,
                        max_attempts = pending.max_attempts, delay_ms = delay.as_millis() as u64,
                        "step attempt failed, retrying: {message}"
                    );
                    ctx.shared.metrics.step_retried();
                    ctx.unless_cancelled(tokio::time::sleep(delay)).await?;
                    pending.attempt += 1;
                    let info = pending.attempt_info();
                    ctx.event(|workflow_id| RuntimeEvent::StepExecuting {
                        workflow_id,
                        function_id: pending.function_id,
                        name: pending.name.clone(),
                        attempt: pending.attempt,
                    });
                    ctx.pending = Some(pending);
                    return Ok(StepEnd::Retry(info));
                }
                let failure = StepFailureRecord {
                    message,
                    attempt_errors: std::mem::take(&mut pending.errors),
                    retries_exhausted: pending.options.retry.retries_allowed,
                };
                (None, Some(failure))
            }
        };
        let step = StepRecord {
            workflow_id: ctx.info.id.clone(),
            function_id: pending.function_id,
            name: pending.name,
            output,
            error,
            attempts: pending.attempt,
            started_at: pending.started_at,
            completed_at: now_ms(),
        };
        ctx.record(step.clone()).await?;
        tracing::debug!(
            workflow_id = %step.workflow_id, function_id = step.function_id, step = %step.name,
            attempts = step.attempts, duration_ms = step.completed_at - step.started_at,
            ok = step.error.is_none(), "step checkpointed"
        );
        ctx.event(|workflow_id| RuntimeEvent::StepCompleted {
            workflow_id,
            function_id: step.function_id,
            name: step.name.clone(),
            ok: step.error.is_none(),
        });
        Ok(StepEnd::Done(outcome_of(step)))
    }

    async fn run_isolated(
        &mut self,
        name: String,
        input: Vec<u8>,
        attempt: AttemptInfo,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        let ctx = self.workflow("run-isolated")?;
        let Some(pending) = &ctx.pending else {
            return Err(violation(format!(
                "run-isolated({name:?}) outside begin-step/end-step"
            )));
        };
        let seed = format!("{}#{}", ctx.info.id, pending.function_id);
        let (shared, component, info, created_at) = (
            ctx.shared.clone(),
            ctx.component.clone(),
            ctx.info.clone(),
            ctx.created_at,
        );
        let limits = ctx.limits;
        let state = HostState::new(
            &seed,
            created_at,
            limits.memory_bytes,
            Role::IsolatedStep { info },
        );
        let mut store = shared.engine.store(state, limits.fuel)?;
        let guest = match shared.engine.instantiate(&component, &mut store).await {
            Ok(guest) => guest,
            Err(err) => {
                return Ok(Err(format!(
                    "isolated step {name:?} could not start: {err}"
                )));
            }
        };
        Ok(
            match guest
                .call_run_step(&mut store, &name, &input, attempt)
                .await
            {
                Ok(Ok(output)) => Ok(output),
                Ok(Err(StepError::Failed(message))) => Err(message),
                Ok(Err(StepError::InvalidInput(message))) => {
                    Err(format!("invalid input for step {name:?}: {message}"))
                }
                Ok(Err(StepError::UnknownStep(_))) => Err(format!(
                    "isolated step {name:?} is not listed in the component's export! steps"
                )),
                Err(err) => {
                    let trap = classify(&err, store.data().panic_message.as_deref());
                    let workflow_id = store.data().workflow_id();
                    shared.metrics.isolated_trapped(trap.class);
                    shared.emit(|| RuntimeEvent::IsolatedStepTrapped {
                        workflow_id,
                        name: name.clone(),
                        class: trap.class,
                    });
                    Err(format!("isolated step {name:?} trapped: {trap}"))
                }
            },
        )
    }

    async fn sleep(&mut self, duration_ms: u64) -> wasmtime::Result<()> {
        if self.in_step() {
            tokio::time::sleep(Duration::from_millis(duration_ms)).await;
            return Ok(());
        }
        let ctx = self.workflow("sleep")?;
        let wake_at: u64 = ctx
            .recorded("reprise.sleep", |_| async move {
                Ok(now_ms() as u64 + duration_ms)
            })
            .await?;
        let remaining = wake_at.saturating_sub(now_ms() as u64);
        ctx.unless_cancelled(tokio::time::sleep(Duration::from_millis(remaining)))
            .await
    }

    async fn now_ms(&mut self) -> wasmtime::Result<u64> {
        if self.in_step() {
            return Ok(now_ms() as u64);
        }
        let ctx = self.workflow("now-ms")?;
        ctx.recorded("reprise.now", |_| async { Ok(now_ms() as u64) })
            .await
    }

    async fn random_u64(&mut self) -> wasmtime::Result<u64> {
        if self.in_step() {
            return Ok(fresh_random());
        }
        let ctx = self.workflow("random-u64")?;
        ctx.recorded("reprise.random", |_| async { Ok(fresh_random()) })
            .await
    }

    async fn start_child(
        &mut self,
        workflow: String,
        input: Vec<u8>,
        options: ChildOptions,
    ) -> wasmtime::Result<Result<String, String>> {
        let ctx = self.workflow("start-child")?;
        let (shared, component, parent, instance) = (
            ctx.shared.clone(),
            ctx.component.clone(),
            ctx.info.id.clone(),
            ctx.info.instance.clone(),
        );
        let name = format!("reprise.start-child:{workflow}");
        ctx.recorded(&name, |function_id| async move {
            let Ok(input) = String::from_utf8(input) else {
                return Ok(Err(format!(
                    "input of child workflow {workflow:?} is not UTF-8"
                )));
            };
            let request = StartRequest {
                id: Some(
                    options
                        .id
                        .unwrap_or_else(|| format!("{parent}-{function_id}")),
                ),
                queue: options.queue,
                priority: options.priority.unwrap_or(0),
                deduplication_id: options.deduplication_id,
                parent: Some(parent),
                instance,
                ..StartRequest::new(workflow, input)
            };
            start_child_workflow(&shared, &component, request).await
        })
        .await
    }

    async fn await_child(&mut self, id: String) -> wasmtime::Result<Result<Vec<u8>, ChildFailure>> {
        let ctx = self.workflow("await-child")?;
        let shared = ctx.shared.clone();
        let cancel = ctx.cancel.clone();
        let name = format!("reprise.await-child:{id}");
        let child_id = id.clone();
        let result: ChildResult = ctx
            .recorded(&name, |_| async move {
                let ended = tokio::select! {
                    ended = shared.wait(&id, None) => ended,
                    _ = cancel.cancelled() => return Err(wasmtime::Error::new(Cancelled)),
                };
                Ok(match ended {
                    Ok(Some(child)) if child.status == WorkflowStatus::Success => {
                        let text = child.output.as_deref().unwrap_or("null");
                        ChildResult::Ok(
                            serde_json::from_str(text).unwrap_or(serde_json::Value::Null),
                        )
                    }
                    Ok(Some(child)) => ChildResult::Err {
                        status: child.status.to_string(),
                        message: child.error.unwrap_or_default(),
                    },
                    Ok(None) => ChildResult::Err {
                        status: "UNKNOWN".into(),
                        message: format!("stopped waiting for workflow {id}"),
                    },
                    Err(RuntimeError::UnknownWorkflowId(_)) => ChildResult::Err {
                        status: "UNKNOWN".into(),
                        message: format!("no workflow with id {id}"),
                    },
                    Err(err) => {
                        return Err(wasmtime::Error::new(HostFailure(StoreError::Corrupt {
                            table: "workflow_status",
                            message: err.to_string(),
                        })));
                    }
                })
            })
            .await?;
        Ok(match result {
            ChildResult::Ok(value) => {
                Ok(serde_json::to_vec(&value).unwrap_or_else(|_| b"null".to_vec()))
            }
            ChildResult::Err { status, message } => Err(ChildFailure {
                id: child_id,
                status,
                message,
            }),
        })
    }

    async fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        let workflow_id = self.workflow_id();
        match level {
            LogLevel::Trace => tracing::trace!(target: "guest", %workflow_id, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "guest", %workflow_id, "{message}"),
            LogLevel::Info => tracing::info!(target: "guest", %workflow_id, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "guest", %workflow_id, "{message}"),
            LogLevel::Error => tracing::error!(target: "guest", %workflow_id, "{message}"),
        }
        Ok(())
    }

    async fn workflow_info(&mut self) -> wasmtime::Result<WorkflowInfo> {
        match &self.role {
            Role::Workflow(ctx) => Ok(ctx.info.clone()),
            Role::IsolatedStep { info } => Ok(info.clone()),
            Role::Inspect => Err(violation("workflow-info while listing definitions".into())),
        }
    }

    async fn report_panic(&mut self, message: String) -> wasmtime::Result<()> {
        self.panic_message = Some(message);
        Ok(())
    }
}

impl HostState {
    /// The id of the workflow this instance works for, for logs and events.
    pub(crate) fn workflow_id(&self) -> String {
        match &self.role {
            Role::Workflow(ctx) => ctx.info.id.clone(),
            Role::IsolatedStep { info } => info.id.clone(),
            Role::Inspect => String::new(),
        }
    }
}

/// 64 random bits from the OS-seeded hasher: not for cryptography, enough for jitter and ids.
pub(crate) fn fresh_random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish()
}
