//! Driving a workflow to its end: begin an execution, run it, and after a trap re-instantiate
//! and replay, bounded by the workflow's `max_recovery_attempts`; PENDING workflows resumed on
//! exactly the code they started on; a workflow that parks in a wait resumed by replay when
//! the wait ends. Whether a start needs a drive is [`start`]'s; the runtime as an execution
//! sees it is [`services`].

pub(crate) mod deadline;
pub(crate) mod recovery;
mod retry;
pub(crate) mod services;
pub(crate) mod start;
pub(crate) mod unwritten;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::runtime::drive::recovery::Verdict;
use crate::runtime::drive::services::RuntimeServices;
use crate::runtime::drive::unwritten::Unwritten;
use crate::runtime::error::RuntimeError;
use crate::runtime::events::RuntimeEvent;
use crate::runtime::execution::context::WorkflowContext;
use crate::runtime::execution::history::History;
use crate::runtime::execution::instance::LoadedComponent;
use crate::runtime::execution::{ExecutionEnd, execute};
use crate::runtime::options::UpgradePolicy;
use crate::runtime::replay::moving;
use crate::runtime::shared::{Shared, workflow_info};
use crate::runtime::waiting::park::Parking;
use crate::telemetry::{Ending, ExecutionSpan};
use reprise_store::{
    StepRecord, StoreError, TrapRecord, WorkflowEnd, WorkflowRecord, WorkflowStatus, now_ms,
};

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
    /// A new workflow whose row is not written yet: see [`unwritten`].
    Unwritten(Arc<Unwritten>),
}

impl Begin {
    /// The workflow's id.
    pub fn id(&self) -> &str {
        match self {
            Begin::Id(id) | Begin::Unpark { id, .. } => id,
            Begin::Created(record) => &record.id,
            Begin::Unwritten(unwritten) => unwritten.id(),
        }
    }
}

/// How far a drive got: to the workflow's end, or to a wait it parked in.
pub(crate) enum Driven {
    Ended(Box<WorkflowRecord>),
    Parked(Parking),
}

/// How long a drive in the foreground tries again after transient database failures before
/// it reports the workflow unfinished.
const FOREGROUND_RETRIES: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs a workflow until it reaches a terminal status, recovering it after every trap and
/// waiting out its parked waits here.
pub(crate) async fn drive(
    shared: &Arc<Shared>,
    mut begin: Begin,
) -> Result<WorkflowRecord, RuntimeError> {
    loop {
        let id = begin.id().to_string();
        match retry::until_parked(shared, begin, Some(FOREGROUND_RETRIES)).await {
            Ok(Driven::Ended(record)) => return Ok(*record),
            Ok(Driven::Parked(parking)) => {
                let (id, epoch) = parking.wait(shared).await;
                begin = Begin::Unpark { id, epoch };
            }
            Err(err) if err.is_fenced() && still_ours(shared, &id).await => {
                tracing::info!(workflow_id = %id, "execution stopped by a move to other code: driving it on");
                begin = Begin::Id(id);
            }
            Err(err) => return Err(err),
        }
    }
}

/// Whether a workflow whose execution here was fenced is still this executor's and active: a
/// move to other code took its epoch and left it here, to be driven on, on that code. One
/// another host adopted is theirs.
async fn still_ours(shared: &Arc<Shared>, id: &str) -> bool {
    matches!(shared.workflow(id).await, Ok(now)
        if !now.status.is_settled() && now.executor_id == shared.options.executor_id)
}

/// What the next pass of a drive does before it runs the workflow code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Begin a new execution, if the recovery verdict allows one, and replay the history.
    Recover,
    /// Its execution is begun and it has no history: it was just created or claimed.
    Fresh,
    /// Go on in the execution it parked in, by replay under the same epoch.
    Resume,
}

/// One drive of one workflow, pass by pass: [`Drive::settled`], [`Drive::ready`],
/// [`Drive::run`], [`Drive::absorb`].
struct Drive<'a> {
    shared: &'a Arc<Shared>,
    workflow: WorkflowRecord,
    /// The epoch of the execution this drive has begun, once it has one: it writes under it,
    /// and begins the next execution only if the workflow still has it.
    held: Option<u64>,
    /// This drive ran or ended the workflow, so an end it finds is its to report (one that
    /// finds a workflow already ended reports nothing).
    acted: bool,
    /// A new workflow whose row this drive writes before it touches it (see [`unwritten`]).
    unwritten: Option<Arc<Unwritten>>,
}

/// How one execution ended, with what the drive needs to act on it.
struct Ran {
    ended: Result<ExecutionEnd, RuntimeError>,
    cancel: CancellationToken,
    execution: u32,
}

/// Runs a workflow until it ends or parks, recovering it after every trap. A parked workflow
/// stays registered as running here, so a cancel still reaches it.
pub(crate) async fn drive_until_parked(
    shared: &Arc<Shared>,
    begin: Begin,
) -> Result<Driven, RuntimeError> {
    let (mut drive, mut next) = Drive::begin(shared, begin).await?;
    loop {
        if let Some(record) = drive.settled()? {
            return Ok(Driven::Ended(record));
        }
        if !drive.ready(&mut next).await? {
            // Ended before it ran (deadline, recovery verdict): the next pass reports it.
            continue;
        }
        let ran = drive.run(next).await?;
        match drive.absorb(ran).await? {
            Some(parking) => return Ok(Driven::Parked(parking)),
            None => next = Next::Recover,
        }
    }
}

impl<'a> Drive<'a> {
    /// Reads (or takes) the workflow and says what its first pass does.
    async fn begin(shared: &'a Arc<Shared>, begin: Begin) -> Result<(Self, Next), RuntimeError> {
        let mut unwritten = None;
        let (workflow, held, next, acted) = match begin {
            Begin::Id(id) => (shared.workflow(&id).await?, None, Next::Recover, false),
            Begin::Created(record) => {
                let epoch = record.epoch;
                (*record, Some(epoch), Next::Fresh, true)
            }
            Begin::Unpark { id, epoch } => {
                (shared.workflow(&id).await?, Some(epoch), Next::Resume, true)
            }
            Begin::Unwritten(new) => {
                let record = new.record();
                unwritten = Some(new);
                (record.clone(), Some(record.epoch), Next::Fresh, true)
            }
        };
        let drive = Drive {
            shared,
            workflow,
            held,
            acted,
            unwritten,
        };
        Ok((drive, next))
    }

    /// The workflow's final row once it has ended; fenced when another execution took it over
    /// from the one this drive holds.
    fn settled(&mut self) -> Result<Option<Box<WorkflowRecord>>, RuntimeError> {
        let workflow = &self.workflow;
        if let Some(epoch) = self
            .held
            .filter(|e| *e != workflow.epoch && !workflow.status.is_settled())
        {
            return Err(StoreError::Fenced {
                workflow_id: workflow.id.clone(),
                epoch,
                current: workflow.epoch,
            }
            .into());
        }
        if !workflow.status.is_settled() {
            return Ok(None);
        }
        if self.acted {
            self.shared.options.telemetry.workflow_finished(workflow);
        }
        Ok(Some(Box::new(workflow.clone())))
    }

    /// Makes the workflow ready to run: a deadline that passed (also while no host ran) ends
    /// it, and a recovery begins a new execution unless the verdict ends the workflow instead.
    /// False when the workflow ended here.
    async fn ready(&mut self, next: &mut Next) -> Result<bool, RuntimeError> {
        self.acted = true;
        let shared = self.shared;
        let id = self.workflow.id.clone();
        // Only the id was known: act on it only while this executor owns it. One another host
        // adopted (while this one's lease had run out) is theirs.
        if self.held.is_none() && self.workflow.executor_id != shared.options.executor_id {
            return Err(StoreError::Fenced {
                workflow_id: id,
                epoch: self.workflow.epoch,
                current: self.workflow.epoch,
            }
            .into());
        }
        if let Some(reason) = deadline::passed(&self.workflow, now_ms()) {
            self.written().await?;
            self.workflow = deadline::expire(shared, &id, &reason).await?;
            return Ok(false);
        }
        if *next != Next::Fresh && self.moved_to_newest().await? {
            *next = Next::Recover;
        }
        if *next != Next::Recover {
            return Ok(true);
        }
        let instance = shared.instance(&self.workflow.instance);
        let verdict = recovery::verdict(
            &self.workflow,
            &instance.trap_policies,
            instance.max_host_recoveries,
        );
        let expected = self.held.unwrap_or(self.workflow.epoch);
        let end = match verdict {
            Verdict::Recover => None,
            Verdict::Fail(message) => Some(WorkflowEnd::MaxRecoveryAttemptsExceeded(message)),
            Verdict::Pause(message) => Some(WorkflowEnd::Paused(message)),
        };
        if let Some(end) = end {
            self.workflow = shared.finish(&id, &end, expected).await?;
            return Ok(false);
        }
        let began = shared
            .store
            .begin_execution(&id, &shared.options.executor_id, expected)
            .await?;
        self.workflow.executions = began.executions;
        self.workflow.epoch = began.epoch;
        self.held = Some(began.epoch);
        Ok(true)
    }

    /// With `upgrade = "auto"`: moves the workflow to the newest version registered here when
    /// its history replays cleanly on it. True when it moved: the move took its epoch, so the
    /// drive goes on in a new execution.
    async fn moved_to_newest(&mut self) -> Result<bool, RuntimeError> {
        let shared = self.shared;
        let workflow = &self.workflow;
        if shared.instance(&workflow.instance).upgrade != UpgradePolicy::Auto {
            return Ok(false);
        }
        let Some(newest) = shared.newest.of(&workflow.name) else {
            return Ok(false);
        };
        if newest.digest == workflow.app_version {
            return Ok(false);
        }
        let id = workflow.id.clone();
        match moving::upgrade(shared, &id, &newest, false).await {
            Ok(moved) if moved.upgraded => {
                self.workflow = shared.workflow(&id).await?;
                self.held = None;
                Ok(true)
            }
            Ok(moved) => {
                tracing::info!(workflow_id = %id, to = %newest.digest, verdict = moved.verdict.label(), "stays on its version: its history does not replay cleanly on the newest");
                Ok(false)
            }
            Err(err) => {
                tracing::warn!(workflow_id = %id, to = %newest.digest, "not moved to the newest version: {err}");
                Ok(false)
            }
        }
    }

    /// Writes the row of a workflow that runs before it is written, unless it is: before the
    /// drive reads or changes it.
    async fn written(&self) -> Result<(), RuntimeError> {
        if let Some(unwritten) = &self.unwritten {
            unwritten.write(self.shared).await?;
        }
        Ok(())
    }

    /// Runs the workflow code once on a fresh instance, replaying its history.
    async fn run(&mut self, next: Next) -> Result<Ran, RuntimeError> {
        let shared = self.shared;
        let workflow = &self.workflow;
        let id = workflow.id.clone();
        // The epoch was just read or written: lapses of the lease before now are behind it.
        let lapses = shared.lease.lapses();
        // Registered as soon as its status was read, before any wait for a place: a cancel
        // from elsewhere is looked for from then on.
        let cancel = shared.running.register(&id);
        let prepared = async {
            let component = shared.component(&workflow.app_version).await?;
            // Executions beyond the pool wait here, in turn, before they read their history.
            let place = shared.slots.workflow().await;
            let steps = if next == Next::Fresh {
                Vec::new()
            } else {
                shared.store.steps(&id).await?
            };
            Ok::<_, RuntimeError>((component, place, steps))
        };
        let (component, place, steps) = match prepared.await {
            Ok(prepared) => prepared,
            Err(err) => {
                shared.running.unregister(&id);
                return Err(err);
            }
        };
        let execution = workflow.executions;
        tracing::debug!(workflow_id = %id, execution, name = %workflow.name, "execution started");
        shared.events.emit(|| RuntimeEvent::ExecutionStarted {
            workflow_id: id.clone(),
            execution,
        });
        // A parked workflow goes on in the execution it parked in: a new span, same number.
        let trace = shared.options.telemetry.execution_started(
            workflow,
            &shared.options.executor_id,
            next == Next::Resume,
        );
        let context = execution_context(
            shared,
            (&component, self.unwritten.clone()),
            workflow,
            steps,
            (cancel.clone(), lapses),
            &trace,
        );
        let ended = match context {
            // The deadline interrupts the execution where it is, as a cancel does.
            Ok(context) => tokio::select! {
                ended = execute(&shared.engine, &component, workflow, context) => ended,
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
        Ok(Ran {
            ended,
            cancel,
            execution,
        })
    }

    /// Acts on how the execution ended: records the end or the trap, or hands back what the
    /// workflow parked on.
    async fn absorb(&mut self, ran: Ran) -> Result<Option<Parking>, RuntimeError> {
        let shared = self.shared;
        let id = self.workflow.id.clone();
        let execution = ran.execution;
        let ended = ran.ended?;
        if let ExecutionEnd::Finished(end) = &ended
            && let Some(unwritten) = &self.unwritten
            && let Some(record) = unwritten.write_ended(shared, end).await?
        {
            // It made no durable call: its row is written ended, in one commit.
            shared.finished(&record);
            self.workflow = record;
            return Ok(None);
        }
        // Whatever else it did, it did to a written workflow.
        self.written().await?;
        match ended {
            ExecutionEnd::Parked(wake) => {
                tracing::debug!(workflow_id = %id, execution, %wake, "workflow parked");
                return Ok(Some(Parking {
                    id,
                    wake,
                    cancel: ran.cancel,
                    deadline: self.workflow.deadline_at,
                    epoch: self.workflow.epoch,
                }));
            }
            ExecutionEnd::Finished(end) => {
                self.workflow = shared.finish(&id, &end, self.workflow.epoch).await?;
            }
            ExecutionEnd::Cancelled => self.workflow = shared.workflow(&id).await?,
            ExecutionEnd::ContinuedAsNew(input) => {
                // The next run starts on the newest version registered here, if any.
                let to = match shared.newest.of(&self.workflow.name) {
                    Some(newest) => newest.digest.clone(),
                    None => self.workflow.app_version.clone(),
                };
                let epoch = self.workflow.epoch;
                self.workflow = shared
                    .store
                    .continue_as_new(&id, epoch, &input, &to)
                    .await?;
                tracing::info!(workflow_id = %id, run = self.workflow.run, app_version = %to, "workflow continues as new");
                // A new run: the next pass begins its first execution.
                self.held = None;
            }
            ExecutionEnd::Trapped(trap) => {
                tracing::warn!(workflow_id = %id, execution, class = %trap.class, "workflow instance trapped: {}", trap.message);
                let instance = shared.instance(&self.workflow.instance);
                let limit = shared.limits(&self.workflow).memory_bytes;
                let grown =
                    recovery::grown_memory_limit(trap.class, limit, &instance.trap_policies);
                let record = TrapRecord {
                    class: trap.class.as_str(),
                    message: &trap.message,
                    memory_limit: grown,
                    epoch: Some(self.workflow.epoch),
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
                self.workflow = shared.workflow(&id).await?;
            }
        }
        Ok(None)
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
        Ok(ExecutionEnd::ContinuedAsNew(_)) => Ending::plain("continued_as_new"),
        // The store or the engine failed under it; the workflow stays PENDING.
        Err(err) => Ending::failed("host_failure", err.to_string()),
    }
}

/// The durable state of the workflow's next execution, replaying `steps`, with the runtime as
/// it sees it.
fn execution_context(
    shared: &Arc<Shared>,
    (component, unwritten): (&Arc<LoadedComponent>, Option<Arc<Unwritten>>),
    workflow: &WorkflowRecord,
    steps: Vec<StepRecord>,
    (cancel, lapses): (CancellationToken, u64),
    trace: &ExecutionSpan,
) -> Result<WorkflowContext, StoreError> {
    let instance = shared.instance(&workflow.instance);
    let limits = shared.limits(workflow);
    let grants = instance.grants.clone();
    let info = workflow_info(workflow, &shared.options.executor_id, &workflow.app_version)?;
    let host = RuntimeServices {
        shared: shared.clone(),
        component: component.clone(),
        trace: trace.clone(),
        info: info.clone(),
        created_at: workflow.created_at,
        deadline_at: workflow.deadline_at,
        limits,
        grants: grants.clone(),
        run: workflow.run,
        lapses_seen: lapses.into(),
        unwritten,
    };
    let history = History::new(&workflow.id, steps);
    let host = Arc::new(host);
    let mut context =
        WorkflowContext::new(host, info, workflow.epoch, history, limits, grants, cancel);
    context.trace = trace.clone();
    context.quotas = instance.quotas;
    context.run = workflow.run;
    let as_ms = |ms: i64| u64::try_from(ms).unwrap_or(0);
    context.scheduled = workflow
        .scheduled_at
        .map(|at| (as_ms(at), as_ms(workflow.started_at.unwrap_or(at))));
    Ok(context)
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

/// What a drive holds while its workflow runs (a queue's worker slot, say): dropped when the
/// drive ends, told when the workflow parks and before it runs again.
pub trait DriveGuard: Send + 'static {
    /// The workflow parked: give back what a waiting workflow need not hold.
    fn parked(&mut self) {}
    /// The workflow woke: take back what it gave, waiting for it if need be.
    fn unparking(&mut self) -> impl std::future::Future<Output = ()> + Send {
        std::future::ready(())
    }
}

impl DriveGuard for () {}

/// Drives a workflow in the background, tracked so shutdown can wait for it. `guard` is
/// dropped when the drive ends.
pub(crate) fn spawn_with<G: DriveGuard>(shared: &Arc<Shared>, begin: Begin, mut guard: G) {
    let task_shared = shared.clone();
    shared.tasks.spawn(async move {
        let id = begin.id().to_string();
        match retry::until_parked(&task_shared, begin, None).await {
            Ok(Driven::Ended(_)) => drop(guard),
            // The drive's task ends here; a small one waits, holding only the id, what wakes
            // it and `guard`.
            Ok(Driven::Parked(parking)) => {
                guard.parked();
                tokio::spawn(async move {
                    let (id, epoch) = parking.wait(&task_shared).await;
                    guard.unparking().await;
                    spawn_with(&task_shared, Begin::Unpark { id, epoch }, guard);
                });
            }
            Err(err) if err.is_fenced() => {
                if still_ours(&task_shared, &id).await {
                    tracing::info!(workflow_id = %id, "execution stopped by a move to other code: driving it on");
                    spawn_with(&task_shared, Begin::Id(id), guard);
                } else {
                    tracing::warn!(workflow_id = %id, "execution stopped: {err}");
                    drop(guard);
                }
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
