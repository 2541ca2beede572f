//! The host side of the WIT `durable` interface — the only bridge from guest calls to the
//! store. Every outcome is committed here before the guest sees it.

use std::time::Duration;

use reprise_protocol::recorded;

use crate::bindings::reprise::workflow::{durable, types};
use crate::bindings::{
    AttemptInfo, ChildFailure, ChildOptions, LogLevel, StepEnd, StepOptions, StepStart,
    WorkflowInfo,
};
use crate::grants::secret_not_granted;
use crate::runtime::events::RuntimeEvent;
use crate::runtime::execution::context::{GuestLine, WorkflowContext};
use crate::runtime::execution::history::{Call, Position};
use crate::runtime::execution::instance::{InstanceState, Role};
use crate::runtime::execution::interrupt::{Frontier, Interrupt, frontier, parked, violation};
use crate::runtime::execution::step::{PendingStep, checked_json, outcome_of};
use crate::runtime::ids::{fresh_random, idempotency_key};
use crate::runtime::waiting::children;
use crate::runtime::waiting::park::sleep_parks;
use crate::runtime::waiting::step_slot::step_slot;
use crate::runtime::waiting::waits;
use crate::runtime::waiting::wake::Wake;
use crate::sandbox::with_refusal;
use reprise_store::{StepFailureRecord, StepRecord, now_ms};

impl InstanceState {
    /// The workflow's durable state, for a durable call of workflow code (or a step's start
    /// or end), which also earns the guest a fresh CPU budget when it returns.
    fn workflow(&mut self, call: &str) -> wasmtime::Result<&mut WorkflowContext> {
        self.refuel = true;
        match &mut self.role {
            Role::Workflow(ctx) => Ok(ctx),
            _ => Err(violation(format!(
                "{call} is only available inside a workflow"
            ))),
        }
    }

    fn in_step(&self) -> bool {
        matches!(&self.role, Role::Workflow(ctx) if ctx.pending().is_some())
            || matches!(self.role, Role::IsolatedStep { .. })
    }
}

impl types::Host for InstanceState {}

impl durable::Host for InstanceState {
    async fn begin_step(
        &mut self,
        name: String,
        options: StepOptions,
    ) -> wasmtime::Result<StepStart> {
        // A refusal of workflow code before this step is not the step's.
        self.access.take_refusal();
        let ctx = self.workflow("begin-step")?;
        ctx.check_cancelled()?;
        if let Some(outer) = ctx.pending() {
            return Err(violation(format!(
                "step {name:?} was called inside step {:?}; steps cannot nest",
                outer.name
            )));
        }
        match ctx.claim(&Call::named(name.as_str()))? {
            Position::Replay(step) => {
                let function_id = step.function_id;
                ctx.trace.step_replayed(&step);
                ctx.event(|workflow_id| RuntimeEvent::StepReplayed {
                    workflow_id,
                    function_id,
                    name: name.clone(),
                });
                Ok(StepStart::Replay(outcome_of(step)))
            }
            Position::Execute(function_id) => {
                ctx.may_act().await?;
                let slot = step_slot(ctx, &name).await?;
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
                    began: std::time::Instant::now(),
                    timeout: None,
                    slot,
                };
                let info = pending.attempt_info();
                ctx.host.metrics().step_executed();
                ctx.trace.attempt_started(function_id, &pending.name, 1);
                ctx.event(|workflow_id| RuntimeEvent::StepExecuting {
                    workflow_id,
                    function_id,
                    name: pending.name.clone(),
                    attempt: 1,
                });
                ctx.enter_step(pending);
                Ok(StepStart::Execute(info))
            }
        }
    }

    async fn end_step(&mut self, output: Result<Vec<u8>, String>) -> wasmtime::Result<StepEnd> {
        let refusal = self.access.take_refusal();
        let output = output.map_err(|message| with_refusal(message, refusal));
        let ctx = self.workflow("end-step")?;
        let cap = ctx.limits.max_output_bytes;
        let Some(mut pending) = ctx.leave_step() else {
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
                    ctx.host.metrics().step_retried();
                    ctx.trace.attempt_ended(Some(&message));
                    ctx.unless_cancelled(tokio::time::sleep(delay)).await?;
                    ctx.may_act().await?;
                    pending.attempt += 1;
                    let info = pending.attempt_info();
                    let (function_id, attempt) = (pending.function_id, pending.attempt);
                    ctx.trace
                        .attempt_started(function_id, &pending.name, attempt);
                    ctx.event(|workflow_id| RuntimeEvent::StepExecuting {
                        workflow_id,
                        function_id: pending.function_id,
                        name: pending.name.clone(),
                        attempt: pending.attempt,
                    });
                    ctx.enter_step(pending);
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
            epoch: Some(ctx.epoch),
            committed_epoch: None,
            args: None,
        };
        ctx.record(&step).await?;
        // Ended once the outcome is durable: the span covers what the guest waited for.
        let error = step.error.as_ref().map(|failure| failure.message.as_str());
        ctx.trace.attempt_ended(error);
        ctx.host
            .metrics()
            .step_duration(&step.name, pending.began.elapsed());
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
        let Some(pending) = ctx.pending() else {
            return Err(violation(format!(
                "run-isolated({name:?}) outside begin-step/end-step"
            )));
        };
        let (host, function_id, timeout) = (ctx.host.clone(), pending.function_id, pending.timeout);
        host.run_isolated(function_id, &name, input, attempt, timeout)
            .await
            .map_err(|v| Interrupt::Violation(v).into())
    }

    async fn set_step_timeout(&mut self, timeout_ms: u64) -> wasmtime::Result<()> {
        let ctx = self.workflow("set-step-timeout")?;
        let Some(pending) = ctx.pending_mut() else {
            return Err(violation(
                "set-step-timeout outside begin-step/end-step".into(),
            ));
        };
        if !pending.options.isolated {
            return Err(violation(format!(
                "step {:?} set a timeout but is not isolated: only an isolated step's instance \
                 can be interrupted safely",
                pending.name
            )));
        }
        pending.timeout = Some(Duration::from_millis(timeout_ms.max(1)));
        Ok(())
    }

    async fn sleep(&mut self, duration_ms: u64) -> wasmtime::Result<()> {
        if self.in_step() {
            tokio::time::sleep(Duration::from_millis(duration_ms)).await;
            return Ok(());
        }
        let ctx = self.workflow("sleep")?;
        let call = Call::with_args(recorded::SLEEP, &[duration_ms.to_string().as_bytes()]);
        let wake_at: u64 = ctx
            .recorded(call, |_| async move {
                // Saturate: a sleep of u64::MAX ms wakes never, not at once.
                Ok((now_ms() as u64).saturating_add(duration_ms))
            })
            .await?;
        let remaining = wake_at.saturating_sub(now_ms() as u64);
        if remaining > 0 && ctx.dry_run.is_some() {
            // A dry replay does not wait: the workflow sleeps here, and this is where it stops.
            return Err(frontier(Frontier {
                function_id: ctx.history.next_position(),
                name: format!("{} until {wake_at}", recorded::SLEEP),
            }));
        }
        if sleep_parks(remaining) {
            return Err(parked(Wake::At(wake_at)));
        }
        ctx.unless_cancelled(tokio::time::sleep(Duration::from_millis(remaining)))
            .await
    }

    async fn now_ms(&mut self) -> wasmtime::Result<u64> {
        if self.in_step() {
            return Ok(now_ms() as u64);
        }
        let ctx = self.workflow("now-ms")?;
        ctx.recorded(Call::named(recorded::NOW), |_| async {
            Ok(now_ms() as u64)
        })
        .await
    }

    async fn random_u64(&mut self) -> wasmtime::Result<u64> {
        if self.in_step() {
            return Ok(fresh_random());
        }
        let ctx = self.workflow("random-u64")?;
        ctx.recorded(Call::named(recorded::RANDOM), |_| async {
            Ok(fresh_random())
        })
        .await
    }

    async fn start_child(
        &mut self,
        workflow: String,
        input: Vec<u8>,
        options: ChildOptions,
    ) -> wasmtime::Result<Result<String, String>> {
        children::start(self.workflow("start-child")?, workflow, input, options).await
    }

    async fn await_child(&mut self, id: String) -> wasmtime::Result<Result<Vec<u8>, ChildFailure>> {
        children::wait(self.workflow("await-child")?, id).await
    }

    async fn log(&mut self, level: LogLevel, message: String) -> wasmtime::Result<()> {
        let workflow_id = self.workflow_id();
        let message = loggable(&message);
        // The step the line came from; none for workflow code.
        let step = match &self.role {
            Role::Workflow(ctx) => ctx.pending().map(|p| p.name.clone()),
            Role::IsolatedStep { step, .. } => Some(step.clone()),
            Role::Listing(_) => None,
        };
        let step = step.as_deref();
        // Workflow code between recorded positions logged when it first ran; replaying it
        // (after a recovery, or each time a parked workflow wakes) would print every line
        // again, looking like re-run steps. Kept at debug level, marked.
        if let Role::Workflow(ctx) = &mut self.role
            && let Some(dry) = &mut ctx.dry_run
        {
            dry.lines.push(GuestLine {
                position: ctx.history.next_position(),
                level: level_name(level),
                step: step.map(str::to_string),
                message: message.into_owned(),
            });
            return Ok(());
        }
        let replayed = matches!(&self.role, Role::Workflow(ctx)
            if ctx.pending().is_none() && ctx.history.replaying());
        if replayed {
            tracing::debug!(target: "guest", %workflow_id, step, replayed = true, "{message}");
            return Ok(());
        }
        match level {
            LogLevel::Trace => tracing::trace!(target: "guest", %workflow_id, step, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "guest", %workflow_id, step, "{message}"),
            LogLevel::Info => tracing::info!(target: "guest", %workflow_id, step, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "guest", %workflow_id, step, "{message}"),
            LogLevel::Error => tracing::error!(target: "guest", %workflow_id, step, "{message}"),
        }
        Ok(())
    }

    async fn workflow_info(&mut self) -> wasmtime::Result<WorkflowInfo> {
        match &self.role {
            Role::Workflow(ctx) => Ok(ctx.info.clone()),
            Role::IsolatedStep { info, .. } => Ok(info.clone()),
            Role::Listing(_) => Err(violation("workflow-info while listing definitions".into())),
        }
    }

    async fn secret(&mut self, name: String) -> wasmtime::Result<Result<String, String>> {
        let access = &self.access;
        if let Err(refused) = access.in_step(|| format!("to read secret {name:?}")) {
            return Ok(Err(refused));
        }
        Ok(match access.grants.secrets.get(&name) {
            Some(value) => Ok(value.to_string()),
            None => Err(access.refuse(secret_not_granted(&access.instance, &name))),
        })
    }

    async fn send(
        &mut self,
        workflow_id: String,
        topic: String,
        message: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        waits::send(self.workflow("send")?, workflow_id, topic, message).await
    }

    async fn recv(
        &mut self,
        topic: String,
        timeout_ms: u64,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, String>> {
        waits::recv(self.workflow("recv")?, topic, timeout_ms).await
    }

    async fn set_event(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        waits::set_event(self.workflow("set-event")?, key, value).await
    }

    async fn get_event(
        &mut self,
        workflow_id: String,
        key: String,
        timeout_ms: u64,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, String>> {
        waits::get_event(self.workflow("get-event")?, workflow_id, key, timeout_ms).await
    }

    async fn write_stream(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        waits::write_stream(self.workflow("write-stream")?, key, Some(value)).await
    }

    async fn close_stream(&mut self, key: String) -> wasmtime::Result<Result<(), String>> {
        waits::write_stream(self.workflow("close-stream")?, key, None).await
    }

    async fn scheduled_time(&mut self) -> wasmtime::Result<Option<(u64, u64)>> {
        Ok(match &self.role {
            Role::Workflow(ctx) => ctx.scheduled,
            _ => None,
        })
    }

    async fn idempotency_key(&mut self) -> wasmtime::Result<Option<String>> {
        Ok(match &self.role {
            Role::Workflow(ctx) => ctx
                .pending()
                .map(|step| idempotency_key(&ctx.info.id, ctx.run, step.function_id)),
            Role::IsolatedStep { key, .. } => Some(key.clone()),
            Role::Listing(_) => None,
        })
    }

    async fn patched(&mut self, id: String) -> wasmtime::Result<bool> {
        self.workflow("patched")?.patched(&id).await
    }

    async fn continue_as_new(&mut self, input: Vec<u8>) -> wasmtime::Result<()> {
        let ctx = self.workflow("continue-as-new")?;
        ctx.check_cancelled()?;
        if let Some(step) = ctx.pending() {
            return Err(violation(format!(
                "continue-as-new was called inside step {:?}; only workflow code may",
                step.name
            )));
        }
        match checked_json(input, ctx.limits.max_output_bytes, "continue-as-new input") {
            Ok(text) => Err(Interrupt::ContinueAsNew(text).into()),
            Err(message) => Err(violation(message)),
        }
    }

    async fn declare_topic(
        &mut self,
        topic: String,
        type_name: String,
        schema: Vec<u8>,
    ) -> wasmtime::Result<()> {
        let Role::Listing(topics) = &mut self.role else {
            return Err(violation(format!(
                "declare-topic({topic:?}) outside the listing of definitions"
            )));
        };
        let declared = crate::runtime::topics::declared(topics, topic, type_name, &schema);
        declared.map_err(violation)
    }

    async fn report_panic(&mut self, message: String) -> wasmtime::Result<()> {
        self.panic_message = Some(message);
        Ok(())
    }
}

/// A log level as `replay` prints it.
fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Trace => "TRACE",
        LogLevel::Debug => "DEBUG",
        LogLevel::Info => "INFO",
        LogLevel::Warn => "WARN",
        LogLevel::Error => "ERROR",
    }
}

/// The longest guest log message passed on to the host's logs; one guest must not flood them
/// (or the host's memory, once per subscriber) with a line of many megabytes.
const MAX_LOG_BYTES: usize = 64 << 10;

/// A guest's log line as the host logs it: cut to [`MAX_LOG_BYTES`], and with its control
/// characters escaped (`\n`, `\r`, `\u{1b}`; a tab stays), so a guest can neither forge host
/// log lines in the text format nor send escape sequences to an operator's terminal.
fn loggable(message: &str) -> std::borrow::Cow<'_, str> {
    let message = capped_log_message(message);
    if !message.chars().any(|c| c.is_control() && c != '\t') {
        return message;
    }
    let mut escaped = String::with_capacity(message.len() + 16);
    for c in message.chars() {
        if c.is_control() && c != '\t' {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    escaped.into()
}

/// `message`, cut at [`MAX_LOG_BYTES`] on a character boundary with a marker saying how much
/// was left out.
fn capped_log_message(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= MAX_LOG_BYTES {
        return message.into();
    }
    let mut end = MAX_LOG_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… [log message cut: {} more bytes]",
        &message[..end],
        message.len() - end
    )
    .into()
}

#[cfg(test)]
#[path = "durable_tests.rs"]
mod tests;
