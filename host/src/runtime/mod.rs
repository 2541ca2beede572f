//! Runs workflows durably: the runtime asks the engine for instances and the store for
//! history, and nothing below it knows about anything above.

mod completion;
pub mod durable;
pub mod events;
mod executor;
pub mod history;
mod recovery;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::engine::{Engine, EngineError, EngineOptions, LoadedComponent};
use crate::limits::InstanceLimits;
use crate::metrics::Metrics;
use crate::store::{Inserted, NewWorkflow, Store, StoreError, WorkflowEnd, WorkflowRecord};
use completion::Completions;
pub use events::RuntimeEvent;
pub use recovery::Begin;

/// Why the runtime could not do what was asked. Guest failures are not errors here: they end
/// up in the workflow's status.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The component defines no workflow of that name; nothing was written.
    #[error("component defines no workflow named {name:?}; it defines: {}", available.join(", "))]
    UnknownWorkflow {
        name: String,
        available: Vec<String>,
    },
    /// The input is not JSON; nothing was written.
    #[error("input is not valid JSON: {0}")]
    InvalidInput(String),
    /// No queue of that name is configured; nothing was written.
    #[error("no queue named {name:?}; configured queues: {}", if available.is_empty() { "none".to_string() } else { available.join(", ") })]
    UnknownQueue {
        name: String,
        available: Vec<String>,
    },
    /// No instance of that name is configured; nothing was written.
    #[error("no instance named {0:?}")]
    UnknownInstance(String),
    /// A workflow refers to a component digest the database does not hold.
    #[error("component {0} is not stored in the database")]
    MissingComponent(String),
    #[error("no workflow with id {0}")]
    UnknownWorkflowId(String),
    /// A checkpoint could not be committed; the workflow stays PENDING.
    #[error("{0}")]
    Checkpoint(String),
    #[error("background task failed: {0}")]
    Task(String),
}

/// How the workflows of one configured instance run: its limits, recovery bound and the config
/// values its guest reads. DBOS's configured instances: one component, several settings.
#[derive(Debug, Clone)]
pub struct InstanceOptions {
    pub limits: InstanceLimits,
    /// Recoveries allowed after the first execution (DBOS's default: 100).
    pub max_recovery_attempts: u32,
    /// Config values the guest reads through `workflow-info`; captured when a workflow starts,
    /// so a recovery sees what the start saw.
    pub config: BTreeMap<String, String>,
}

impl Default for InstanceOptions {
    fn default() -> Self {
        InstanceOptions {
            limits: InstanceLimits::default(),
            max_recovery_attempts: 100,
            config: BTreeMap::new(),
        }
    }
}

/// How this runtime runs workflows.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Who owns the workflows this runtime starts; recovery resumes only its own.
    pub executor_id: String,
    /// Named instances. `reprise run` has one, named [`DEFAULT_INSTANCE`].
    pub instances: BTreeMap<String, InstanceOptions>,
}

/// How often a process looks for its running workflows having been cancelled elsewhere.
pub const CANCELLATION_POLL: Duration = Duration::from_millis(200);

/// The instance `reprise run` and the convenience calls use.
pub const DEFAULT_INSTANCE: &str = "default";

impl RuntimeOptions {
    /// One instance named `default`.
    pub fn single(executor_id: impl Into<String>, instance: InstanceOptions) -> Self {
        RuntimeOptions {
            executor_id: executor_id.into(),
            instances: BTreeMap::from([(DEFAULT_INSTANCE.to_string(), instance)]),
        }
    }

    /// The largest memory limit of any instance, which sizes the engine's instance pool.
    fn max_memory_bytes(&self) -> u64 {
        self.instances
            .values()
            .map(|i| i.limits.memory_bytes)
            .max()
            .unwrap_or(InstanceLimits::DEFAULT_MEMORY_BYTES)
    }
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions::single("local", InstanceOptions::default())
    }
}

/// Everything a start needs beyond the component: which instance, queue and id.
#[derive(Debug, Clone, Default)]
pub struct StartRequest {
    pub workflow: String,
    /// JSON text.
    pub input: String,
    /// Instance name; [`DEFAULT_INSTANCE`] when empty.
    pub instance: String,
    /// Caller-chosen id (idempotency key); generated when `None`.
    pub id: Option<String>,
    /// Enqueue on this queue instead of starting at once.
    pub queue: Option<String>,
    /// Lower runs sooner within a queue.
    pub priority: i32,
    /// Refuse a second enqueue with this id while the first is active on the queue.
    pub deduplication_id: Option<String>,
    /// The workflow that started this one, for child workflows.
    pub parent: Option<String>,
}

impl StartRequest {
    /// A start of `workflow` on the default instance.
    pub fn new(workflow: impl Into<String>, input: impl Into<String>) -> Self {
        StartRequest {
            workflow: workflow.into(),
            input: input.into(),
            ..StartRequest::default()
        }
    }
}

/// What every execution shares.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) engine: Engine,
    pub(crate) options: RuntimeOptions,
    pub(crate) metrics: Metrics,
    events: broadcast::Sender<RuntimeEvent>,
    /// Background drives (started, dequeued, recovered workflows), drained at shutdown.
    tasks: TaskTracker,
    /// Cancellation signals of the workflows executing in this process.
    running: Mutex<HashMap<String, CancellationToken>>,
    /// Who waits for which workflow to end.
    completions: Completions,
    /// Configured queues and the signal that wakes each one's dispatcher.
    queues: RwLock<BTreeMap<String, Arc<Notify>>>,
}

impl Shared {
    /// Sends an event if anyone listens; builds it only then.
    pub(crate) fn emit(&self, event: impl FnOnce() -> RuntimeEvent) {
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(event());
        }
    }

    pub(crate) async fn workflow(&self, id: &str) -> Result<WorkflowRecord, RuntimeError> {
        self.store
            .get_workflow(id)
            .await?
            .ok_or_else(|| RuntimeError::UnknownWorkflowId(id.to_string()))
    }

    /// The options of a workflow's instance. A workflow whose instance is no longer configured
    /// runs with default limits (its config values were captured at its start).
    pub(crate) fn instance(&self, name: &str) -> InstanceOptions {
        self.options
            .instances
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// The component with this digest, from memory or from the database.
    pub(crate) async fn component(
        &self,
        digest: &str,
    ) -> Result<Arc<LoadedComponent>, RuntimeError> {
        if let Some(loaded) = self.engine.loaded(digest) {
            return Ok(loaded);
        }
        let bytes = self
            .store
            .get_component(digest)
            .await?
            .ok_or_else(|| RuntimeError::MissingComponent(digest.to_string()))?;
        Ok(self.engine.load(&bytes).await?)
    }

    /// Ends a workflow; returns its final row (the first ending, if another came first).
    pub(crate) async fn finish(
        &self,
        id: &str,
        end: &WorkflowEnd,
    ) -> Result<WorkflowRecord, RuntimeError> {
        let record = self.store.finish_workflow(id, end).await?;
        tracing::debug!(workflow_id = id, status = %record.status, "workflow finished");
        self.metrics.workflow_finished(record.status);
        self.completions.complete(id);
        self.emit(|| RuntimeEvent::WorkflowFinished {
            workflow_id: id.to_string(),
            status: record.status,
        });
        Ok(record)
    }

    /// Validates and records a start: the component defines the workflow, the input is JSON,
    /// the instance and queue exist. Nothing is written when a check fails. A start without a
    /// queue has its first execution begun in the same commit when `begin` is true.
    pub(crate) async fn submit(
        &self,
        component: &LoadedComponent,
        request: StartRequest,
        begin: bool,
    ) -> Result<Inserted, RuntimeError> {
        if !component.has_workflow(&request.workflow) {
            return Err(RuntimeError::UnknownWorkflow {
                name: request.workflow,
                available: component.definitions.workflows.clone(),
            });
        }
        serde_json::from_str::<serde::de::IgnoredAny>(&request.input)
            .map_err(|e| RuntimeError::InvalidInput(e.to_string()))?;
        let instance_name = if request.instance.is_empty() {
            DEFAULT_INSTANCE.to_string()
        } else {
            request.instance
        };
        let instance = self
            .options
            .instances
            .get(&instance_name)
            .ok_or_else(|| RuntimeError::UnknownInstance(instance_name.clone()))?;
        let wake = match &request.queue {
            Some(queue) => Some(self.queue_signal(queue)?),
            None => None,
        };
        let new = NewWorkflow {
            id: request.id.unwrap_or_else(new_workflow_id),
            name: request.workflow,
            input: request.input,
            executor_id: self.options.executor_id.clone(),
            app_version: component.digest.clone(),
            instance: instance_name,
            config: serde_json::to_string(&instance.config).unwrap_or_else(|_| "{}".into()),
            max_recovery_attempts: instance.max_recovery_attempts,
            begin_execution: begin && request.queue.is_none(),
            queue_name: request.queue,
            priority: request.priority,
            deduplication_id: request.deduplication_id,
            parent_workflow_id: request.parent,
        };
        let inserted = self.store.insert_workflow(&new).await?;
        if inserted.created {
            self.metrics.workflow_started();
            if let Some(wake) = wake {
                wake.notify_one();
            }
        }
        Ok(inserted)
    }

    /// The wake-up signal of a configured queue.
    pub(crate) fn queue_signal(&self, queue: &str) -> Result<Arc<Notify>, RuntimeError> {
        let queues = self
            .queues
            .read()
            .map_err(|_| RuntimeError::Task("queue registry poisoned".into()))?;
        queues
            .get(queue)
            .cloned()
            .ok_or_else(|| RuntimeError::UnknownQueue {
                name: queue.to_string(),
                available: queues.keys().cloned().collect(),
            })
    }

    /// Drives a workflow in the background, tracked so shutdown can wait for it. `guard` is
    /// dropped when the drive ends (a queue slot, say).
    pub(crate) fn spawn_drive_with<G: Send + 'static>(self: &Arc<Self>, begin: Begin, guard: G) {
        let shared = self.clone();
        self.tasks.spawn(async move {
            let id = begin.id().to_string();
            if let Err(err) = recovery::drive(&shared, begin).await {
                tracing::error!(workflow_id = %id, "workflow could not be driven: {err}");
            }
            drop(guard);
        });
    }

    pub(crate) fn spawn_drive(self: &Arc<Self>, begin: Begin) {
        self.spawn_drive_with(begin, ());
    }

    /// Registers a workflow as executing here; its token is cancelled by [`Runtime::cancel`].
    pub(crate) fn register_running(&self, id: &str) -> CancellationToken {
        let token = CancellationToken::new();
        if let Ok(mut running) = self.running.lock() {
            running.insert(id.to_string(), token.clone());
        }
        token
    }

    /// Whether the workflow is executing in this process.
    pub(crate) fn is_running(&self, id: &str) -> bool {
        self.running
            .lock()
            .map(|running| running.contains_key(id))
            .unwrap_or(false)
    }

    pub(crate) fn unregister_running(&self, id: &str) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(id);
        }
    }

    /// Waits until a workflow is terminal (in this process or any other) or `timeout` passes.
    pub(crate) async fn wait(
        &self,
        id: &str,
        timeout: Option<Duration>,
    ) -> Result<Option<WorkflowRecord>, RuntimeError> {
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        loop {
            // Register before reading, so a completion between the read and the wait is seen.
            let done = self.completions.register(id);
            let record = self.workflow(id).await?;
            if record.status.is_terminal() {
                return Ok(Some(record));
            }
            // Workflows finished by other processes are noticed by polling.
            let poll = tokio::time::sleep(completion::POLL_INTERVAL);
            let expired = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = done => {}
                _ = poll => {}
                _ = expired => return Ok(None),
            }
        }
    }
}

/// The durable workflow runtime: load components, start workflows, drive them to the end,
/// recover what a crash left behind.
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
}

impl Runtime {
    pub fn new(
        store: Arc<dyn Store>,
        engine: &EngineOptions,
        options: RuntimeOptions,
    ) -> Result<Self, RuntimeError> {
        let engine_options = EngineOptions {
            max_memory_bytes: engine.max_memory_bytes.max(options.max_memory_bytes()),
            ..engine.clone()
        };
        let (events, _) = broadcast::channel(65_536);
        Ok(Runtime {
            shared: Arc::new(Shared {
                store,
                engine: Engine::new(&engine_options)?,
                options,
                metrics: Metrics::default(),
                events,
                tasks: TaskTracker::new(),
                running: Mutex::new(HashMap::new()),
                completions: Completions::default(),
                queues: RwLock::new(BTreeMap::new()),
            }),
        })
    }

    /// The store this runtime writes to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// The engine, for measuring instantiation.
    pub fn engine(&self) -> &Engine {
        &self.shared.engine
    }

    pub fn options(&self) -> &RuntimeOptions {
        &self.shared.options
    }

    /// Counters and histograms of what this runtime did, for `/metrics`.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
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
            .put_component(&component.digest, bytes)
            .await?;
        Ok(component)
    }

    /// Declares a queue so starts may name it; returns the signal that wakes its dispatcher.
    pub fn declare_queue(&self, name: &str) -> Arc<Notify> {
        let mut queues = match self.shared.queues.write() {
            Ok(queues) => queues,
            Err(poisoned) => poisoned.into_inner(),
        };
        queues.entry(name.to_string()).or_default().clone()
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
        let inserted = self.shared.submit(component, request, true).await?;
        if inserted.created && inserted.record.queue_name.is_none() {
            self.shared
                .spawn_drive(Begin::Created(Box::new(inserted.record.clone())));
        }
        Ok(inserted)
    }

    /// Runs a workflow to a terminal status, recovering it after traps.
    pub async fn drive(&self, workflow_id: &str) -> Result<WorkflowRecord, RuntimeError> {
        recovery::drive(&self.shared, Begin::Id(workflow_id.to_string())).await
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
        let inserted = self.shared.submit(component, request, true).await?;
        if inserted.created {
            recovery::drive(&self.shared, Begin::Created(Box::new(inserted.record))).await
        } else {
            self.drive(&inserted.record.id).await
        }
    }

    /// Drives a workflow claimed from a queue in the background; `slot` is dropped when it
    /// ends, which frees the queue's slot.
    pub fn spawn_claimed<G: Send + 'static>(&self, record: WorkflowRecord, slot: G) {
        self.shared
            .spawn_drive_with(Begin::Created(Box::new(record)), slot);
    }

    /// Drives a workflow in the background as [`Runtime::drive`] would.
    pub fn spawn(&self, workflow_id: &str) {
        self.shared.spawn_drive(Begin::Id(workflow_id.to_string()));
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
        if let Ok(running) = self.shared.running.lock()
            && let Some(token) = running.get(workflow_id)
        {
            token.cancel();
        }
        self.shared.completions.complete(workflow_id);
        Ok(record)
    }

    /// Resumes a cancelled or failed workflow from its last checkpoint, in the background.
    pub async fn resume(&self, workflow_id: &str) -> Result<WorkflowRecord, RuntimeError> {
        let record = self
            .shared
            .store
            .resume_workflow(workflow_id, &self.shared.options.executor_id)
            .await?;
        self.spawn(workflow_id);
        Ok(record)
    }

    /// Starts a copy of a workflow whose steps before `from_step` are replayed from the
    /// original's records and the rest run anew.
    pub async fn fork(
        &self,
        workflow_id: &str,
        from_step: u32,
        new_id: Option<String>,
    ) -> Result<WorkflowRecord, RuntimeError> {
        let new_id = new_id.unwrap_or_else(new_workflow_id);
        let record = self
            .shared
            .store
            .fork_workflow(workflow_id, &new_id, from_step)
            .await?;
        self.spawn(&new_id);
        Ok(record)
    }

    /// Resumes every PENDING workflow this executor owns and waits for them.
    pub async fn recover(&self) -> Result<Vec<WorkflowRecord>, RuntimeError> {
        recovery::recover_pending(&self.shared).await
    }

    /// Starts every PENDING workflow this executor owns in the background.
    pub async fn spawn_recovery(&self) -> Result<usize, RuntimeError> {
        let pending = self
            .shared
            .store
            .pending_workflows(&self.shared.options.executor_id)
            .await?;
        let count = pending.len();
        for workflow in pending {
            self.shared.spawn_drive(Begin::Id(workflow.id));
        }
        Ok(count)
    }

    /// Stops, at their next durable call, the executions in this process whose workflows were
    /// cancelled by another process (the CLI, another server on the same database). Checks
    /// every [`CANCELLATION_POLL`] with one query for all running workflows.
    pub fn spawn_cancellation_watcher(
        &self,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let shared = self.shared.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(CANCELLATION_POLL) => {}
                }
                let ids: Vec<String> = match shared.running.lock() {
                    Ok(running) => running.keys().cloned().collect(),
                    Err(_) => break,
                };
                if ids.is_empty() {
                    continue;
                }
                let records = match shared.store.workflow_statuses(&ids).await {
                    Ok(records) => records,
                    Err(err) => {
                        tracing::warn!("cannot check for cancelled workflows: {err}");
                        continue;
                    }
                };
                for record in records {
                    if record.status == crate::store::WorkflowStatus::Cancelled
                        && let Ok(running) = shared.running.lock()
                        && let Some(token) = running.get(&record.id)
                    {
                        token.cancel();
                    }
                }
            }
        })
    }

    /// Workflows being driven in the background right now.
    pub fn in_flight(&self) -> usize {
        self.shared.tasks.len()
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

/// A random UUID-shaped id.
pub fn new_workflow_id() -> String {
    let (a, b) = (durable::fresh_random(), durable::fresh_random());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        (b >> 48) & 0x3fff | 0x8000,
        b & 0xffff_ffff_ffff
    )
}
