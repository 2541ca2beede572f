//! Driving a workflow to its end: begin an execution, run it, and after a trap re-instantiate
//! and replay, bounded by the workflow's `max_recovery_attempts`; PENDING workflows resumed on
//! exactly the code they started on; a workflow that parks in a wait resumed by replay when
//! the wait ends. Also the one place that decides whether a start needs a drive, and the
//! runtime as an execution sees it ([`ExecutionHost`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::bindings::{AttemptInfo, WorkflowInfo};
use crate::grants::Grants;
use crate::limits::InstanceLimits;
use crate::metrics::Metrics;
use crate::runtime::abort::ProtocolViolation;
use crate::runtime::completion::{POLL_INTERVAL, Waited};
use crate::runtime::context::WorkflowContext;
use crate::runtime::deadline;
use crate::runtime::error::RuntimeError;
use crate::runtime::events::{EventSink, RuntimeEvent};
use crate::runtime::executor::{ExecutionEnd, execute};
use crate::runtime::history::History;
use crate::runtime::host::WorkflowHost;
use crate::runtime::instance::LoadedComponent;
use crate::runtime::isolated;
use crate::runtime::options::StartRequest;
use crate::runtime::park::Parking;
use crate::runtime::recovery::{self, Verdict};
use crate::runtime::shared::Shared;
use crate::store::{
    Change, Inserted, NewMessage, StepRecord, StoreError, TrapRecord, WorkflowEnd, WorkflowRecord,
    WorkflowStatus, now_ms,
};
use crate::telemetry::{Ending, ExecutionSpan};

/// How a drive begins: what the caller already knows saves reads on the hot path.
pub enum Begin {
    /// Only the id is known: read the workflow, begin an execution if it is not terminal.
    Id(String),
    /// The workflow was just created (or claimed from its queue) with its first execution
    /// begun in the same commit, so it has no recorded steps.
    Created(Box<WorkflowRecord>),
    /// The workflow parked in a wait that has ended: the same execution goes on by replay
    /// under its epoch (no new execution is counted; a wait is not a recovery).
    Unpark { id: String, epoch: u64 },
}

impl Begin {
    /// The workflow's id.
    pub fn id(&self) -> &str {
        match self {
            Begin::Id(id) | Begin::Unpark { id, .. } => id,
            Begin::Created(record) => &record.id,
        }
    }
}

/// How far a drive got: to the workflow's end, or to a wait it parked in.
pub(crate) enum Driven {
    Ended(Box<WorkflowRecord>),
    Parked(Parking),
}

/// Runs a workflow until it reaches a terminal status, recovering it after every trap and
/// waiting out its parked waits here.
pub(crate) async fn drive(
    shared: &Arc<Shared>,
    mut begin: Begin,
) -> Result<WorkflowRecord, RuntimeError> {
    loop {
        match drive_until_parked(shared, begin).await? {
            Driven::Ended(record) => return Ok(*record),
            Driven::Parked(parking) => {
                let (id, epoch) = parking.wait(shared).await;
                begin = Begin::Unpark { id, epoch };
            }
        }
    }
}

/// Runs a workflow until it ends or parks, recovering it after every trap. A parked workflow
/// stays registered as running here, so a cancel still reaches it.
pub(crate) async fn drive_until_parked(
    shared: &Arc<Shared>,
    begin: Begin,
) -> Result<Driven, RuntimeError> {
    // `acted`: this drive ran or ended the workflow, so an end it finds is its to report
    // (one that finds a workflow already ended reports nothing).
    let mut acted = !matches!(begin, Begin::Id(_));
    // `held`: the epoch of the execution this drive has begun, once it has one; it writes
    // under it, and begins the next execution only if the workflow still has it.
    let (mut workflow, mut fresh, mut unpark, mut held) = match begin {
        Begin::Id(id) => (shared.workflow(&id).await?, false, false, None),
        Begin::Created(record) => {
            let epoch = record.epoch;
            (*record, true, false, Some(epoch))
        }
        Begin::Unpark { id, epoch } => (shared.workflow(&id).await?, false, true, Some(epoch)),
    };
    loop {
        if let Some(epoch) = held.filter(|e| *e != workflow.epoch && !workflow.status.is_settled())
        {
            return Err(StoreError::Fenced {
                workflow_id: workflow.id.clone(),
                epoch,
                current: workflow.epoch,
            }
            .into());
        }
        if workflow.status.is_settled() {
            if acted {
                shared.options.telemetry.workflow_finished(&workflow);
            }
            return Ok(Driven::Ended(Box::new(workflow)));
        }
        acted = true;
        let id = workflow.id.clone();
        // A deadline that passed (also while no host ran) ends the workflow before it runs.
        if let Some(reason) = deadline::passed(&workflow, now_ms()) {
            workflow = deadline::expire(shared, &id, &reason).await?;
            continue;
        }
        // A parked workflow goes on in the execution it parked in: a new span, same number.
        let resumed = std::mem::take(&mut unpark);
        if !fresh && !resumed {
            let instance = shared.instance(&workflow.instance);
            let verdict = recovery::verdict(
                &workflow,
                &instance.trap_policies,
                instance.max_host_recoveries,
            );
            let end = match verdict {
                Verdict::Recover => None,
                Verdict::Fail(message) => Some(WorkflowEnd::MaxRecoveryAttemptsExceeded(message)),
                Verdict::Pause(message) => Some(WorkflowEnd::Paused(message)),
            };
            let expected = held.unwrap_or(workflow.epoch);
            if let Some(end) = end {
                workflow = shared.finish(&id, &end, expected).await?;
                continue;
            }
            let began = shared
                .store
                .begin_execution(&id, &shared.options.executor_id, expected)
                .await?;
            workflow.executions = began.executions;
            workflow.epoch = began.epoch;
            held = Some(began.epoch);
        }
        let component = shared.component(&workflow.app_version).await?;
        // Executions beyond the pool wait here, in turn, before they read their history.
        let place = shared.slots.workflow().await;
        let steps = if fresh {
            Vec::new()
        } else {
            shared.store.steps(&id).await?
        };
        fresh = false;
        let execution = workflow.executions;
        tracing::debug!(workflow_id = %id, execution, name = %workflow.name, "execution started");
        shared.events.emit(|| RuntimeEvent::ExecutionStarted {
            workflow_id: id.clone(),
            execution,
        });
        let trace = shared.options.telemetry.execution_started(
            &workflow,
            &shared.options.executor_id,
            resumed,
        );
        let cancel = shared.running.register(&id);
        let context =
            execution_context(shared, &component, &workflow, steps, cancel.clone(), &trace);
        let ended = match context {
            // The deadline interrupts the execution where it is, as a cancel does.
            Ok(context) => tokio::select! {
                ended = execute(&shared.engine, &component, &workflow, context) => ended,
                _ = deadline::reached(workflow.deadline_at) => Ok(ExecutionEnd::Cancelled),
            },
            Err(err) => Err(err.into()),
        };
        drop(place);
        trace.ended(ending(&ended));
        // A parked workflow stays registered, so a cancel reaches it while it waits.
        if !matches!(ended, Ok(ExecutionEnd::Parked(_))) {
            shared.running.unregister(&id);
        }
        match ended? {
            ExecutionEnd::Parked(wake) => {
                tracing::debug!(workflow_id = %id, execution, %wake, "workflow parked");
                let deadline = workflow.deadline_at;
                return Ok(Driven::Parked(Parking {
                    id,
                    wake,
                    cancel,
                    deadline,
                    epoch: workflow.epoch,
                }));
            }
            ExecutionEnd::Finished(end) => {
                workflow = shared.finish(&id, &end, workflow.epoch).await?;
            }
            ExecutionEnd::Cancelled => workflow = shared.workflow(&id).await?,
            ExecutionEnd::Trapped(trap) => {
                tracing::warn!(workflow_id = %id, execution, class = %trap.class, "workflow instance trapped: {}", trap.message);
                let instance = shared.instance(&workflow.instance);
                let limit = workflow
                    .memory_limit
                    .unwrap_or(instance.limits.memory_bytes);
                let grown =
                    recovery::grown_memory_limit(trap.class, limit, &instance.trap_policies);
                let record = TrapRecord {
                    class: trap.class.as_str(),
                    message: &trap.message,
                    memory_limit: grown,
                    epoch: Some(workflow.epoch),
                };
                shared.store.record_trap(&id, &record).await?;
                if let Some(bytes) = grown {
                    tracing::info!(workflow_id = %id, memory_limit = bytes, "trap policy grew the memory limit");
                }
                shared.metrics.trapped(trap.class);
                shared.events.emit(|| RuntimeEvent::ExecutionTrapped {
                    workflow_id: id.clone(),
                    execution,
                    class: trap.class,
                });
                // The counts the next verdict needs, as the store computed them.
                workflow = shared.workflow(&id).await?;
            }
        }
    }
}

/// How an execution's span says it ended.
fn ending(ended: &Result<ExecutionEnd, RuntimeError>) -> Ending<'_> {
    match ended {
        Ok(ExecutionEnd::Finished(WorkflowEnd::Success(_))) => Ending::plain("ok"),
        Ok(ExecutionEnd::Finished(
            WorkflowEnd::Error(message)
            | WorkflowEnd::MaxRecoveryAttemptsExceeded(message)
            | WorkflowEnd::Paused(message),
        )) => Ending::failed("error", message),
        Ok(ExecutionEnd::Trapped(trap)) => Ending::trapped(trap.class, &trap.message),
        Ok(ExecutionEnd::Cancelled) => Ending::plain("cancelled"),
        Ok(ExecutionEnd::Parked(_)) => Ending::plain("parked"),
        // The store or the engine failed under it; the workflow stays PENDING.
        Err(err) => Ending::failed("host_failure", err.to_string()),
    }
}

/// The durable state of the workflow's next execution, replaying `steps`, with the runtime as
/// it sees it.
fn execution_context(
    shared: &Arc<Shared>,
    component: &Arc<LoadedComponent>,
    workflow: &WorkflowRecord,
    steps: Vec<StepRecord>,
    cancel: CancellationToken,
    trace: &ExecutionSpan,
) -> Result<WorkflowContext, StoreError> {
    let instance = shared.instance(&workflow.instance);
    let mut limits = instance.limits;
    let grants = instance.grants.clone();
    if let Some(bytes) = workflow.memory_limit {
        limits.memory_bytes = bytes;
    }
    let info = WorkflowInfo {
        id: workflow.id.clone(),
        name: workflow.name.clone(),
        recovery_attempt: workflow.executions.saturating_sub(1),
        executor_id: shared.options.executor_id.clone(),
        app_version: workflow.app_version.clone(),
        instance: workflow.instance.clone(),
        config: instance_config(workflow)?.into_iter().collect(),
    };
    let host = ExecutionHost {
        shared: shared.clone(),
        component: component.clone(),
        trace: trace.clone(),
        info: info.clone(),
        created_at: workflow.created_at,
        deadline_at: workflow.deadline_at,
        limits,
        grants: grants.clone(),
    };
    let history = History::new(&workflow.id, steps);
    let host = Arc::new(host);
    let mut context =
        WorkflowContext::new(host, info, workflow.epoch, history, limits, grants, cancel);
    context.trace = trace.clone();
    let as_ms = |ms: i64| u64::try_from(ms).unwrap_or(0);
    context.scheduled = workflow
        .scheduled_at
        .map(|at| (as_ms(at), as_ms(workflow.started_at.unwrap_or(at))));
    Ok(context)
}

/// The instance config values captured at the workflow's start. A row that does not parse is
/// corrupt: the workflow must not run with settings it was not started with.
fn instance_config(workflow: &WorkflowRecord) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_str(&workflow.config).map_err(|e| StoreError::Corrupt {
        table: "workflow_status",
        message: format!(
            "workflow {}: config is not a JSON object of strings: {e}",
            workflow.id
        ),
    })
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
        tasks.spawn(async move {
            match drive(&shared, Begin::Id(workflow.id.clone())).await {
                Ok(record) => Ok(Some(record)),
                // Another executor took it over meanwhile (it adopted it while this one's
                // lease had run out): it is theirs to finish.
                Err(err) if err.is_fenced() => {
                    tracing::warn!(workflow_id = %workflow.id, "not recovered here: {err}");
                    Ok(None)
                }
                Err(cause) => Err(RuntimeError::unfinished(&workflow.id, cause)),
            }
        });
    }
    let mut recovered = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let record = joined.map_err(|e| RuntimeError::Task(e.to_string()))??;
        if let Some(record) = record {
            debug_assert!(record.status != WorkflowStatus::Pending);
            recovered.push(record);
        }
    }
    recovered.sort_by_key(|r| r.created_at);
    Ok(recovered)
}

/// Records a start and, when it is not queued, drives it in the background. This is the
/// one place that decides whether a start needs a drive; see [`drive_after_start`].
pub(crate) async fn start(
    shared: &Arc<Shared>,
    component: &LoadedComponent,
    request: StartRequest,
    orphans: Orphans,
) -> Result<Inserted, RuntimeError> {
    let inserted = shared.submit(component, request, true).await?;
    if let Some(begin) = drive_after_start(&inserted, orphans, |id| shared.running.contains(id)) {
        spawn(shared, begin);
    }
    Ok(inserted)
}

/// Drives a workflow in the background, tracked so shutdown can wait for it. `guard` is
/// dropped when the drive ends (a queue slot, say).
pub(crate) fn spawn_with<G: Send + 'static>(shared: &Arc<Shared>, begin: Begin, guard: G) {
    let task_shared = shared.clone();
    shared.tasks.spawn(async move {
        let id = begin.id().to_string();
        match drive_until_parked(&task_shared, begin).await {
            Ok(Driven::Ended(_)) => drop(guard),
            // The drive's task ends here; a small one waits, holding only the id, what wakes
            // it and `guard`.
            Ok(Driven::Parked(parking)) => {
                tokio::spawn(async move {
                    let (id, epoch) = parking.wait(&task_shared).await;
                    spawn_with(&task_shared, Begin::Unpark { id, epoch }, guard);
                });
            }
            Err(err) if err.is_fenced() => {
                tracing::warn!(workflow_id = %id, "execution stopped: {err}");
                drop(guard);
            }
            Err(err) => {
                tracing::error!(workflow_id = %id, "workflow could not be driven: {err}");
                drop(guard);
            }
        }
    });
}

pub(crate) fn spawn(shared: &Arc<Shared>, begin: Begin) {
    spawn_with(shared, begin, ());
}

/// What a start does with a workflow that already exists under the requested id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Orphans {
    /// Leave it: it runs wherever it runs, or recovery picks it up.
    Leave,
    /// Drive it when it is PENDING and not running here: a child created by a parent execution
    /// that crashed before it recorded the start.
    Adopt,
}

/// Whether a recorded start needs a drive, and how it begins. Queued workflows wait for their
/// dispatcher; a new one begins with its first execution already recorded.
pub(crate) fn drive_after_start(
    inserted: &Inserted,
    orphans: Orphans,
    running_here: impl Fn(&str) -> bool,
) -> Option<Begin> {
    let record = &inserted.record;
    // Queued or delayed: its queue's dispatcher, or the starter of delayed workflows, runs it.
    if record.queue_name.is_some() || record.status == WorkflowStatus::Enqueued {
        None
    } else if inserted.created {
        Some(Begin::Created(Box::new(record.clone())))
    } else if orphans == Orphans::Adopt
        && record.status == WorkflowStatus::Pending
        && !running_here(&record.id)
    {
        Some(Begin::Id(record.id.clone()))
    } else {
        None
    }
}

/// The real [`WorkflowHost`] of one execution: the runtime's shared state and the component,
/// workflow and limits it runs.
pub(crate) struct ExecutionHost {
    pub(crate) shared: Arc<Shared>,
    pub(crate) component: Arc<LoadedComponent>,
    /// The execution's span, for the trap of an isolated step attempt.
    pub(crate) trace: ExecutionSpan,
    pub(crate) info: WorkflowInfo,
    pub(crate) created_at: i64,
    /// The workflow's deadline, which its children inherit.
    pub(crate) deadline_at: Option<i64>,
    pub(crate) limits: InstanceLimits,
    pub(crate) grants: Arc<Grants>,
}

#[async_trait]
impl WorkflowHost for ExecutionHost {
    async fn checkpoint(&self, step: &StepRecord) -> Result<(), StoreError> {
        let started = Instant::now();
        self.shared.store.record_step(step).await?;
        self.shared.metrics.checkpoint(started.elapsed());
        Ok(())
    }

    async fn start_child(
        &self,
        mut request: StartRequest,
    ) -> Result<Result<String, String>, StoreError> {
        // A child has the earlier of its own deadline and its parent's.
        request.deadline_at = match (request.deadline_at, self.deadline_at) {
            (Some(own), Some(parent)) => Some(own.min(parent)),
            (own, parent) => own.or(parent),
        };
        match start(&self.shared, &self.component, request, Orphans::Adopt).await {
            Ok(inserted) => Ok(Ok(inserted.record.id)),
            Err(RuntimeError::Store(err @ StoreError::Duplicate { .. })) => {
                Ok(Err(err.to_string()))
            }
            Err(RuntimeError::Store(err)) => Err(err),
            Err(err) => Ok(Err(err.to_string())),
        }
    }

    async fn wait_for(&self, id: &str, timeout: Duration) -> Result<Waited, StoreError> {
        self.shared
            .wait_ended(id, Some(timeout), POLL_INTERVAL)
            .await
    }

    async fn run_isolated(
        &self,
        function_id: u32,
        name: &str,
        input: Vec<u8>,
        attempt: AttemptInfo,
        timeout: Option<Duration>,
    ) -> Result<Result<Vec<u8>, String>, ProtocolViolation> {
        let seed = format!("{}#{function_id}", self.info.id);
        let _place = self.shared.slots.isolated().await;
        let instance = isolated::Instance {
            shared: &self.shared,
            component: &self.component,
            info: &self.info,
            seed: &seed,
            created_at: self.created_at,
            limits: self.limits,
            grants: &self.grants,
            trace: &self.trace,
        };
        instance.run_attempt(name, input, attempt, timeout).await
    }

    async fn send_message(
        &self,
        message: &NewMessage,
        record: &StepRecord,
    ) -> Result<(), StoreError> {
        self.shared
            .store
            .send_message(message, Some(record))
            .await?;
        self.shared.signals.wake(&Change::Message {
            workflow_id: message.destination_id.clone(),
            topic: message.topic.clone(),
        });
        Ok(())
    }

    async fn receive_message(
        &self,
        topic: &str,
        at: &StepRecord,
        timed_out: bool,
    ) -> Result<Option<String>, StoreError> {
        let store = &self.shared.store;
        store
            .receive_message(&self.info.id, topic, at, timed_out)
            .await
    }

    async fn get_event(&self, workflow_id: &str, key: &str) -> Result<Option<String>, StoreError> {
        let event = self.shared.store.get_event(workflow_id, key).await?;
        Ok(event.map(|event| event.value))
    }

    async fn set_event(
        &self,
        key: &str,
        value: &str,
        record: &StepRecord,
    ) -> Result<(), StoreError> {
        let id = &self.info.id;
        self.shared
            .store
            .set_event(id, key, value, Some(record))
            .await?;
        self.shared.signals.wake(&Change::Event {
            workflow_id: id.clone(),
            key: key.to_string(),
        });
        Ok(())
    }

    async fn write_stream(
        &self,
        key: &str,
        value: Option<&str>,
        record: Option<&StepRecord>,
    ) -> Result<(), StoreError> {
        let id = &self.info.id;
        self.shared
            .store
            .write_stream(id, key, value, record)
            .await?;
        self.shared.signals.wake(&Change::Stream {
            workflow_id: id.clone(),
            key: key.to_string(),
        });
        Ok(())
    }

    async fn wait_for_change(&self, change: Change, timeout: Duration) -> bool {
        let changed = self.shared.signals.register(&change, &self.shared.store);
        matches!(tokio::time::timeout(timeout, changed).await, Ok(Ok(())))
    }

    fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    fn events(&self) -> &EventSink {
        &self.shared.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inserted(created: bool, queue: Option<&str>, status: WorkflowStatus) -> Inserted {
        Inserted {
            created,
            record: WorkflowRecord {
                queue_name: queue.map(str::to_string),
                ..WorkflowRecord::example("w", status)
            },
        }
    }

    fn decide(inserted: &Inserted, orphans: Orphans, running: bool) -> Option<&'static str> {
        drive_after_start(inserted, orphans, |_| running).map(|begin| match begin {
            Begin::Created(_) => "created",
            Begin::Id(_) => "by id",
            Begin::Unpark { .. } => "unparked",
        })
    }

    #[test]
    fn a_new_unqueued_workflow_is_driven_from_its_insert() {
        let new = inserted(true, None, WorkflowStatus::Pending);
        assert_eq!(decide(&new, Orphans::Leave, false), Some("created"));
        assert_eq!(decide(&new, Orphans::Adopt, false), Some("created"));
    }

    #[test]
    fn queued_workflows_wait_for_their_dispatcher() {
        let queued = inserted(true, Some("q"), WorkflowStatus::Enqueued);
        assert_eq!(decide(&queued, Orphans::Adopt, false), None);
        let old = inserted(false, Some("q"), WorkflowStatus::Pending);
        assert_eq!(decide(&old, Orphans::Adopt, false), None);
    }

    #[test]
    fn an_existing_pending_workflow_is_driven_only_when_adopted_and_idle_here() {
        let orphan = inserted(false, None, WorkflowStatus::Pending);
        assert_eq!(decide(&orphan, Orphans::Leave, false), None);
        assert_eq!(decide(&orphan, Orphans::Adopt, false), Some("by id"));
        assert_eq!(decide(&orphan, Orphans::Adopt, true), None);
        let done = inserted(false, None, WorkflowStatus::Success);
        assert_eq!(decide(&done, Orphans::Adopt, false), None);
    }
}
