//! One workflow execution's durable state — its history cursor, the step in progress, its
//! cancel token — and the two moves every durable call makes: record a value, or replay it.

use std::future::Future;
use std::sync::Arc;

use reprise_protocol::recorded;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::bindings::WorkflowInfo;
use crate::grants::Grants;
use crate::limits::InstanceLimits;
use crate::quotas::{Quota, Quotas, held_bytes_refused};
use crate::runtime::events::RuntimeEvent;
use crate::runtime::execution::history::{Call, History, Position};
use crate::runtime::execution::interrupt::{
    Frontier, cancelled, diverged, frontier, host_failure, violation,
};
use crate::runtime::execution::services::Services;
use crate::runtime::execution::step::PendingStep;
use crate::sandbox::StepPhase;
use crate::telemetry::ExecutionSpan;
use reprise_store::{StepFailureRecord, StepRecord, StoreError, now_ms};

/// A workflow execution's durable state.
pub(crate) struct WorkflowContext {
    /// The runtime, as narrow as this file needs it.
    pub(crate) host: Arc<dyn Services>,
    pub(crate) info: WorkflowInfo,
    /// The ownership epoch this execution began under; every write it makes carries it.
    pub(crate) epoch: u64,
    pub(crate) history: History,
    pub(crate) limits: InstanceLimits,
    /// What the instance's steps may reach.
    pub(crate) grants: Arc<Grants>,
    pub(crate) cancel: CancellationToken,
    pending: Option<PendingStep>,
    /// Tells the instance's clocks and random whether a step attempt runs.
    pub(crate) phase: StepPhase,
    /// For a schedule's firing: when it was scheduled for and when it started (ms).
    pub(crate) scheduled: Option<(u64, u64)>,
    /// The execution's span, parent of its step attempts' spans (off unless tracing).
    pub(crate) trace: ExecutionSpan,
    /// The instance's quotas.
    pub(crate) quotas: Quotas,
    /// Child starts the workflow code has asked for so far, replayed ones included: the same
    /// count at the same call on every replay.
    pub(crate) children_started: u32,
    /// Bytes the workflow holds in messages sent, events and streams, read from the store at
    /// its first write in this execution and kept up to date after.
    pub(crate) held_bytes: Option<u64>,
    /// Set for a replay that executes nothing (`replay`, `upgrade-check`): the first call with
    /// nothing recorded stops the run there, and the guest's log lines are kept here.
    pub(crate) dry_run: Option<DryRun>,
    /// The workflow's run: 0, one more each time it continued as new.
    pub(crate) run: u32,
}

/// What a dry replay keeps of what the guest did on the way.
#[derive(Debug, Clone, Default)]
pub struct DryRun {
    /// The lines it logged.
    pub lines: Vec<GuestLine>,
    /// Each `patched(id)` answered from the history: the id, and whether the new branch was
    /// taken (its marker recorded) or the old one.
    pub patches: Vec<(String, bool)>,
}

/// A line the guest logged during a dry replay, with the position it was logged before.
#[derive(Debug, Clone)]
pub struct GuestLine {
    /// The position of the next durable call when it was logged.
    pub position: u32,
    /// `INFO`, `WARN`, …
    pub level: &'static str,
    /// The step it came from; none for workflow code.
    pub step: Option<String>,
    /// What the guest logged.
    pub message: String,
}

impl WorkflowContext {
    /// The state of an execution replaying `history` on `host`.
    pub(crate) fn new(
        host: Arc<dyn Services>,
        info: WorkflowInfo,
        epoch: u64,
        history: History,
        limits: InstanceLimits,
        grants: Arc<Grants>,
        cancel: CancellationToken,
    ) -> Self {
        WorkflowContext {
            host,
            info,
            epoch,
            history,
            limits,
            grants,
            cancel,
            pending: None,
            phase: StepPhase::new(false),
            scheduled: None,
            trace: ExecutionSpan::default(),
            quotas: Quotas::default(),
            children_started: 0,
            held_bytes: None,
            dry_run: None,
            run: 0,
        }
    }

    /// Counts `bytes` about to be written against the held-bytes quota: `Err` with the
    /// refusal when they would pass it (and counts the refusal), else they count as held.
    pub(crate) async fn hold(&mut self, bytes: usize) -> wasmtime::Result<Result<(), String>> {
        let held = match self.held_bytes {
            Some(held) => held,
            None => self.host.bytes_held().await.map_err(host_failure)?,
        };
        let more = u64::try_from(bytes).unwrap_or(u64::MAX);
        let max = self.quotas.max_held_bytes;
        if held.saturating_add(more) > max {
            self.held_bytes = Some(held);
            self.host.metrics().quota_refused(Quota::HeldBytes);
            return Ok(Err(held_bytes_refused(
                &self.info.instance,
                held,
                more,
                max,
            )));
        }
        self.held_bytes = Some(held + more);
        Ok(Ok(()))
    }

    /// The step attempt in progress, if any.
    pub(crate) fn pending(&self) -> Option<&PendingStep> {
        self.pending.as_ref()
    }

    /// The step attempt in progress, to set what the guest declares after `begin-step`.
    pub(crate) fn pending_mut(&mut self) -> Option<&mut PendingStep> {
        self.pending.as_mut()
    }

    /// An attempt of `step` starts: the guest sees the real clock and entropy until it ends.
    pub(crate) fn enter_step(&mut self, step: PendingStep) {
        self.pending = Some(step);
        self.phase.set(true);
    }

    /// The attempt in progress ended: workflow code runs again, on the virtual clock.
    pub(crate) fn leave_step(&mut self) -> Option<PendingStep> {
        self.phase.set(false);
        self.pending.take()
    }

    /// Stops the execution at a durable call once the workflow is cancelled.
    pub(crate) fn check_cancelled(&self) -> wasmtime::Result<()> {
        if self.cancel.is_cancelled() {
            return Err(cancelled());
        }
        Ok(())
    }

    /// Waits for `work` unless the workflow is cancelled first.
    pub(crate) async fn unless_cancelled<T>(
        &self,
        work: impl Future<Output = T>,
    ) -> wasmtime::Result<T> {
        tokio::select! {
            value = work => Ok(value),
            _ = self.cancel.cancelled() => Err(cancelled()),
        }
    }

    /// Halts before an effect outside the guest until this execution may act: a host whose
    /// lease lapsed waits for its renewal and stops for good if its workflow was taken over.
    pub(crate) async fn may_act(&self) -> wasmtime::Result<()> {
        let host = self.host.clone();
        self.unless_cancelled(host.may_act(self.epoch))
            .await?
            .map_err(host_failure)
    }

    pub(crate) fn event(&self, event: impl FnOnce(String) -> RuntimeEvent) {
        self.host.events().emit(|| event(self.info.id.clone()));
    }

    /// Commits a step outcome; a store failure ends the execution (the workflow stays PENDING).
    pub(crate) async fn record(&self, step: &StepRecord) -> wasmtime::Result<()> {
        self.host.checkpoint(step).await.map_err(host_failure)
    }

    /// Claims the next position for a durable call of workflow code: its record to replay, or
    /// the function id to record it at. For calls whose write and record must commit
    /// together; the others use [`WorkflowContext::recorded`].
    pub(crate) fn claim(&mut self, call: &Call) -> wasmtime::Result<Position> {
        self.check_cancelled()?;
        if let Some(outer) = &self.pending {
            return Err(violation(format!(
                "{} was called inside step {:?}; only workflow code may make durable calls",
                call.name, outer.name
            )));
        }
        let position = self.history.claim(call).map_err(diverged)?;
        self.claimed(position, &call.name)
    }

    /// `patched(id)`: whether the code takes the patched branch (see [`History::patch`]); a
    /// new marker is recorded before the answer.
    pub(crate) async fn patched(&mut self, id: &str) -> wasmtime::Result<bool> {
        self.check_cancelled()?;
        let name = recorded::patch(id);
        if let Some(outer) = &self.pending {
            return Err(violation(format!(
                "patched({id:?}) was called inside step {:?}; only workflow code may branch on a patch",
                outer.name
            )));
        }
        let Some(position) = self.history.patch(id) else {
            if let Some(dry) = &mut self.dry_run {
                dry.patches.push((id.to_string(), false));
            }
            return Ok(false);
        };
        if let Position::Execute(function_id) = self.claimed(position, &name)? {
            let unit = Some(recorded::UNIT_OUTPUT.to_string());
            let marker = self.step_record(function_id, &name, unit, None, now_ms());
            self.record(&marker).await?;
        } else if let Some(dry) = &mut self.dry_run {
            dry.patches.push((id.to_string(), true));
        }
        Ok(true)
    }

    /// Counts a replayed position; a dry replay stops at the first one to execute.
    fn claimed(&self, position: Position, name: &str) -> wasmtime::Result<Position> {
        match &position {
            Position::Replay(_) => self.host.metrics().step_replayed(),
            Position::Execute(function_id) if self.dry_run.is_some() => {
                return Err(frontier(Frontier {
                    function_id: *function_id,
                    name: name.to_string(),
                }));
            }
            Position::Execute(_) => {}
        }
        Ok(position)
    }

    /// The record of a durable call at `function_id` that produced `output` (JSON text).
    pub(crate) fn step_record(
        &self,
        function_id: u32,
        name: &str,
        output: Option<String>,
        error: Option<String>,
        started_at: i64,
    ) -> StepRecord {
        StepRecord {
            workflow_id: self.info.id.clone(),
            function_id,
            name: name.to_string(),
            output,
            error: error.map(|message| StepFailureRecord {
                message: message.clone(),
                attempt_errors: vec![message],
                retries_exhausted: false,
            }),
            attempts: 1,
            started_at,
            completed_at: now_ms(),
            epoch: Some(self.epoch),
            committed_epoch: None,
            args: self.history.args_of(function_id),
        }
    }

    /// Records (or replays) a value the workflow must see identically on replay: the clock,
    /// random numbers, a sleep's wake-up time, a child's id or result. `produce` runs only
    /// when nothing is recorded at this position; it gets the position.
    pub(crate) async fn recorded<T, F, Fut>(
        &mut self,
        call: Call,
        produce: F,
    ) -> wasmtime::Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(u32) -> Fut,
        Fut: Future<Output = wasmtime::Result<T>>,
    {
        let name = call.name.as_str();
        match self.claim(&call)? {
            Position::Replay(step) => {
                self.trace.step_replayed(&step);
                let text = step.output.as_deref().unwrap_or("null");
                serde_json::from_str(text).map_err(|e| {
                    host_failure(StoreError::Corrupt {
                        table: "operation_outputs",
                        message: format!("{name} at {}: {e}", step.function_id),
                    })
                })
            }
            Position::Execute(function_id) => {
                let started_at = now_ms();
                // A host operation is a step of one attempt in the trace; one that parks or
                // fails ends with its execution.
                self.trace.attempt_started(function_id, name, 1);
                let value = produce(function_id).await?;
                let output = serde_json::to_string(&value).map_err(|e| {
                    violation(format!("{name} produced a value that is not JSON: {e}"))
                })?;
                self.record(&self.step_record(function_id, name, Some(output), None, started_at))
                    .await?;
                self.trace.attempt_ended(None);
                Ok(value)
            }
        }
    }
}
