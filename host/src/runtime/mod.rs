//! Runs workflows durably: the runtime asks the engine for instances and the store for
//! history, and nothing below it knows about anything above.
//!
//! [`execution`] is one run of workflow code on one instance and the durable calls it makes;
//! [`drive`] takes a workflow from start to end across executions (recovery, deadlines);
//! [`waiting`] is what a workflow waits on and how it parks; [`scheduling`] shares the
//! instance pool and hands work to a serving node.

mod drive;
mod error;
mod events;
mod execution;
mod ids;
mod mailbox;
mod options;
mod ownership;
mod reach;
pub mod replay;
mod scheduling;
mod shared;
mod step_limits;
mod topics;
mod waiting;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};
use tokio_util::task::TaskTracker;

use crate::engine::EngineOptions;
use crate::metrics::Metrics;
use drive::Begin;
pub use drive::DriveGuard;
pub use drive::recovery::{AtEnd, MemoryGrowth, TrapPolicies, TrapPolicy};
use drive::start::{self, Existing, Join, runs_before_written};
use drive::unwritten::Unwritten;
pub use error::RuntimeError;
use events::EventSink;
pub use events::RuntimeEvent;
pub use execution::history::NonDeterminism;
pub use execution::instance::{InstanceState, LoadedComponent, WorkflowEngine};
pub use ids::{InvalidId, MAX_WORKFLOW_ID_LEN, new_workflow_id, validate_workflow_id};
pub use mailbox::{MAX_STREAM_READ, Mailbox};
pub use options::{DEFAULT_INSTANCE, InstanceOptions, RuntimeOptions, StartRequest, UpgradePolicy};
use reprise_store::{Inserted, Store, WorkflowRecord, WorkflowStatus, now_ms};
pub use scheduling::dispatch::Dispatch;
pub use scheduling::slots::InstanceUsage;
use scheduling::slots::Slots;
use shared::Shared;
pub use step_limits::StepLimit;
use waiting::completion::Completions;
pub use waiting::running::CANCELLATION_POLL;
use waiting::running::Running;

/// How often a run that waits for a workflow another executor drives looks again whether that
/// executor still holds its lease.
const JOIN_RECHECK: Duration = Duration::from_secs(1);

/// The durable workflow runtime: load components, start workflows, drive them to the end,
/// recover what a crash left behind.
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
}

impl Runtime {
    /// A runtime writing to `store`, with an engine sized for the largest instance limit.
    pub fn new(
        store: Arc<dyn Store>,
        engine: &EngineOptions,
        options: RuntimeOptions,
    ) -> Result<Self, RuntimeError> {
        let engine_options = EngineOptions {
            max_memory_bytes: engine.max_memory_bytes.max(options.max_memory_bytes()),
            ..engine.clone()
        };
        Ok(Runtime {
            shared: Arc::new(Shared {
                topics: Arc::new(topics::TopicChecker::new(store.clone())),
                store,
                engine: WorkflowEngine::new(&engine_options)?,
                slots: Slots::new(engine_options.max_instances),
                options,
                metrics: Metrics::default(),
                events: EventSink::new(65_536),
                tasks: TaskTracker::new(),
                running: Arc::new(Running::default()),
                completions: Completions::default(),
                queues: RwLock::new(BTreeMap::new()),
                signals: Arc::default(),
                due: Notify::new(),
                lease: ownership::LeaseClock::default(),
                adopted: std::sync::Mutex::default(),
                start_rates: Default::default(),
                newest: Default::default(),
                slot_bells: Default::default(),
            }),
        })
    }

    /// The store this runtime writes to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// The engine, for measuring instantiation.
    pub fn engine(&self) -> &WorkflowEngine {
        &self.shared.engine
    }

    /// How this runtime runs workflows.
    pub fn options(&self) -> &RuntimeOptions {
        &self.shared.options
    }

    /// Counters and histograms of what this runtime did, for `/metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Messages, events and streams, from outside the workflows; its writes wake this
    /// runtime's waiters at once.
    pub fn mailbox(&self) -> Mailbox {
        Mailbox::with_signals(
            self.shared.store.clone(),
            self.shared.signals.clone(),
            self.shared.topics.clone(),
        )
    }

    /// The narrow handle a serving node's loops (queue dispatchers, adoption, recovery at
    /// start, delayed starts, the cancellation watcher) drive workflows through.
    pub fn dispatch(&self) -> Dispatch {
        Dispatch::new(self.shared.clone())
    }

    /// Observes what the runtime does from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<RuntimeEvent> {
        self.shared.events.subscribe()
    }

    /// Compiles a component (or loads it from the cache) without storing it: for inspection.
    pub async fn load(&self, bytes: &[u8]) -> Result<Arc<LoadedComponent>, RuntimeError> {
        Ok(self.shared.engine.load(bytes).await?)
    }

    /// Loads a component and stores it by digest so recovery can run exactly this code.
    pub async fn register(&self, bytes: &[u8]) -> Result<Arc<LoadedComponent>, RuntimeError> {
        let component = self.load(bytes).await?;
        self.shared
            .store
            .put_component(&component.digest, bytes, component.topics_json().as_deref())
            .await?;
        self.shared.newest.saw(&component);
        Ok(component)
    }

    /// [`Runtime::register`], naming the stored version as one of component `name`.
    pub async fn register_named(
        &self,
        bytes: &[u8],
        name: &str,
    ) -> Result<Arc<LoadedComponent>, RuntimeError> {
        let component = self.register(bytes).await?;
        self.shared
            .store
            .name_component(&component.digest, name)
            .await?;
        Ok(component)
    }

    /// Creates a workflow on the default instance (or returns the existing one with that id)
    /// without running it.
    pub async fn start(
        &self,
        component: &LoadedComponent,
        workflow: &str,
        input: &str,
        id: Option<String>,
    ) -> Result<Inserted, RuntimeError> {
        let request = StartRequest {
            id,
            ..StartRequest::new(workflow, input)
        };
        self.shared.submit(component, request, false).await
    }

    /// Creates a workflow and, unless it is enqueued, starts running it in the background.
    /// An existing id returns that workflow untouched (idempotency).
    pub async fn submit(
        &self,
        component: &LoadedComponent,
        request: StartRequest,
    ) -> Result<Inserted, RuntimeError> {
        start::start(&self.shared, component, request, Existing::Leave).await
    }

    /// Runs a workflow to a terminal status, recovering it after traps.
    pub async fn drive(&self, workflow_id: &str) -> Result<WorkflowRecord, RuntimeError> {
        drive::drive(&self.shared, Begin::Id(workflow_id.to_string())).await
    }

    /// Starts (or joins, by id) a workflow on the default instance and runs it to the end.
    pub async fn run(
        &self,
        component: &LoadedComponent,
        workflow: &str,
        input: &str,
        id: Option<String>,
    ) -> Result<WorkflowRecord, RuntimeError> {
        let request = StartRequest {
            id,
            ..StartRequest::new(workflow, input)
        };
        self.run_request(component, request).await
    }

    /// Starts (or joins, by id) a workflow as `request` asks and runs it to the end here: a
    /// delayed one once it is due.
    pub async fn run_request(
        &self,
        component: &LoadedComponent,
        request: StartRequest,
    ) -> Result<WorkflowRecord, RuntimeError> {
        if runs_before_written(&request) {
            let (new, _) = self.shared.admit(component, request, true)?;
            let unwritten = Unwritten::new(new, now_ms());
            let driven = drive::drive(&self.shared, Begin::Unwritten(unwritten.clone())).await;
            // A workflow whose row was never written is not stored: its error is the start's.
            return driven.map_err(|cause| {
                if unwritten.is_written() {
                    RuntimeError::unfinished(unwritten.id(), cause)
                } else {
                    cause
                }
            });
        }
        let inserted = self.shared.submit(component, request, true).await?;
        let id = inserted.record.id.clone();
        let delayed = inserted.record.status == WorkflowStatus::Enqueued
            && inserted.record.queue_name.is_none();
        let driven = if delayed {
            self.run_when_due(&id).await
        } else if inserted.created {
            drive::drive(&self.shared, Begin::Created(Box::new(inserted.record))).await
        } else {
            self.join(inserted.record).await
        };
        driven.map_err(|cause| RuntimeError::unfinished(&id, cause))
    }

    /// Runs an existing workflow to its end as [`start::join`] decides: this executor's own
    /// work is driven here, a dead executor's is adopted, and anyone else's is awaited (looked
    /// at again every [`JOIN_RECHECK`], so its owner's death is noticed).
    async fn join(&self, mut record: WorkflowRecord) -> Result<WorkflowRecord, RuntimeError> {
        let me = &self.shared.options.executor_id;
        let mut told = false;
        loop {
            let running_here = self.shared.running.contains(&record.id);
            match start::join(&record, me, running_here) {
                Join::Settled => return Ok(record),
                Join::Drive => return self.drive(&record.id).await,
                Join::Adopt => {
                    let store = &self.shared.store;
                    let owner = &record.executor_id;
                    if !store
                        .adopt_workflows(owner, me, 1, Some(&record.id))
                        .await?
                        .is_empty()
                    {
                        tracing::info!(workflow_id = %record.id, from = %owner, "adopted a workflow whose executor's lease ran out");
                        return self.drive(&record.id).await;
                    }
                }
                Join::Await => {}
            }
            if !told {
                tracing::info!(workflow_id = %record.id, executor_id = %record.executor_id, "waiting for the workflow's end: another executor drives it");
                told = true;
            }
            if let Some(ended) = self.shared.wait(&record.id, Some(JOIN_RECHECK)).await? {
                return Ok(ended);
            }
            record = self.shared.workflow(&record.id).await?;
        }
    }

    /// Drives a workflow in the background as [`Runtime::drive`] would.
    pub fn spawn(&self, workflow_id: &str) {
        drive::spawn(&self.shared, Begin::Id(workflow_id.to_string()));
    }

    /// Waits until the workflow is terminal, or `timeout` passes (`Ok(None)`).
    pub async fn wait(
        &self,
        workflow_id: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<WorkflowRecord>, RuntimeError> {
        self.shared.wait(workflow_id, timeout).await
    }

    /// Cancels a workflow: it ends CANCELLED; if it runs here it stops at its next durable
    /// call (a step, sleep or child await). A terminal workflow is left as it is.
    pub async fn cancel(&self, workflow_id: &str) -> Result<WorkflowRecord, RuntimeError> {
        let record = self.shared.store.cancel_workflow(workflow_id).await?;
        self.shared.cancelled(workflow_id);
        Ok(record)
    }

    /// Resumes a cancelled, failed or paused workflow from its last checkpoint, in the
    /// background; `memory_limit` replaces its memory limit from now on.
    pub async fn resume(
        &self,
        workflow_id: &str,
        memory_limit: Option<u64>,
    ) -> Result<WorkflowRecord, RuntimeError> {
        let pool = self.shared.engine.max_memory_bytes();
        if let Some(asked) = memory_limit.filter(|&asked| asked > pool) {
            return Err(RuntimeError::MemoryLimitTooLarge { asked, pool });
        }
        if let Some(asked) = memory_limit {
            let workflow = self.shared.workflow(workflow_id).await?;
            let minimum = self
                .shared
                .component(&workflow.app_version)
                .await?
                .min_memory_bytes;
            if asked < minimum {
                return Err(RuntimeError::MemoryLimitTooSmall { asked, minimum });
            }
        }
        let record = self
            .shared
            .store
            .resume_workflow(workflow_id, &self.shared.options.executor_id, memory_limit)
            .await?;
        self.spawn(workflow_id);
        Ok(record)
    }

    /// Starts a copy of a workflow whose steps before `from_step` are replayed from the
    /// original's records and the rest run anew; with `to`, on that (stored) version, when the
    /// kept steps replay cleanly on it.
    pub async fn fork(
        &self,
        workflow_id: &str,
        from_step: u32,
        new_id: Option<String>,
        to: Option<Arc<LoadedComponent>>,
    ) -> Result<WorkflowRecord, RuntimeError> {
        if let Some(id) = &new_id {
            validate_workflow_id(id)?;
        }
        if let Some(to) = &to {
            let kept =
                replay::replay_stored(&self.shared, workflow_id, Some(to.clone()), Some(from_step));
            let verdict = kept.await?.replay.verdict;
            if !verdict.is_clean() {
                return Err(RuntimeError::Diverges(format!(
                    "the steps of {workflow_id} before {from_step} do not replay on {}: {}",
                    to.digest,
                    replay::check::at(&verdict)
                )));
            }
        }
        let new_id = new_id.unwrap_or_else(new_workflow_id);
        let store = &self.shared.store;
        let mut record = store.fork_workflow(workflow_id, &new_id, from_step).await?;
        if let Some(to) = &to {
            // Not yet running: the move only switches its version and records where.
            let kept = store.steps(&new_id).await?;
            let at = kept.last().map_or(0, |s| s.function_id + 1);
            record = store
                .upgrade_workflow(&new_id, record.epoch, at, &to.digest)
                .await?;
        }
        self.spawn(&new_id);
        Ok(record)
    }

    /// Replays every PENDING workflow `filter` selects against `component` with nothing
    /// executed and reports, per workflow and grouped, whether its history replays cleanly.
    pub async fn upgrade_check(
        &self,
        component: Arc<LoadedComponent>,
        filter: &replay::check::CheckFilter,
    ) -> Result<replay::check::CheckReport, RuntimeError> {
        replay::check::upgrade_check(&self.shared, component, filter).await
    }

    /// Replays workflow `id` with nothing executed or written: on the version it runs on, or
    /// on `to`; with `until`, only the positions before it are replayed.
    pub async fn replay(
        &self,
        id: &str,
        to: Option<Arc<LoadedComponent>>,
        until: Option<u32>,
    ) -> Result<replay::Replayed, RuntimeError> {
        replay::replay_stored(&self.shared, id, to, until).await
    }

    /// Moves workflow `id` to `component` (stored first) when its history replays cleanly on
    /// it; with `dry_run`, only checks. Any execution of its old code stops at its next write
    /// and this executor's drive of it goes on on the new code.
    pub async fn upgrade(
        &self,
        id: &str,
        component: Arc<LoadedComponent>,
        dry_run: bool,
    ) -> Result<replay::moving::Moved, RuntimeError> {
        replay::moving::upgrade(&self.shared, id, &component, dry_run).await
    }

    /// The stored component of `digest`.
    pub async fn component(&self, digest: &str) -> Result<Arc<LoadedComponent>, RuntimeError> {
        self.shared.component(digest).await
    }

    /// Workflow `id` as a repro bundle (with its children's when `children`): its component,
    /// row, history, messages, children and settings; grants by name only.
    pub async fn export(
        &self,
        id: &str,
        children: bool,
    ) -> Result<replay::bundle::Bundle, RuntimeError> {
        replay::bundle::export(&self.shared, id, children).await
    }

    /// Loads a bundle into this database, owned by this executor: `PAUSED` when `paused`,
    /// else `PENDING` for its recovery (an ended one as it ended). An id that exists here is
    /// refused.
    pub async fn import(
        &self,
        bundle: &replay::bundle::Bundle,
        paused: bool,
    ) -> Result<WorkflowRecord, RuntimeError> {
        replay::bundle::import(&self.shared, bundle, paused).await
    }

    /// How the workflows in flight (of `instance`, if given) use each patch, per version.
    pub async fn patches(
        &self,
        instance: Option<String>,
    ) -> Result<Vec<replay::patches::PatchUse>, RuntimeError> {
        replay::patches::patches(&self.shared, instance).await
    }

    /// Resumes every PENDING workflow this executor owns and waits for them.
    pub async fn recover(&self) -> Result<Vec<WorkflowRecord>, RuntimeError> {
        drive::recover_pending(&self.shared).await
    }

    /// Workflows being driven in the background right now (running or waiting for an
    /// instance; parked ones are not driven until they wake).
    pub fn in_flight(&self) -> usize {
        self.shared.tasks.len()
    }

    /// How the instance pool is used: live instances, executions waiting for one, parked
    /// workflows.
    pub fn instance_usage(&self) -> InstanceUsage {
        self.shared.slots.usage()
    }

    /// Stops taking background work and waits up to `grace` for what runs to finish. Returns
    /// whether everything finished; what did not stays PENDING and resumes at the next start.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.shared.tasks.close();
        tokio::time::timeout(grace, self.shared.tasks.wait())
            .await
            .is_ok()
    }
}
