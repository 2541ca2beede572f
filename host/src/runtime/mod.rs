//! Runs workflows durably: the runtime asks the engine for instances and the store for
//! history, and nothing below it knows about anything above.

pub mod durable;
pub mod events;
mod executor;
pub mod history;
mod recovery;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::broadcast;

use crate::engine::{Engine, EngineError, EngineOptions, LoadedComponent};
use crate::limits::InstanceLimits;
use crate::store::{Inserted, NewWorkflow, Store, StoreError, WorkflowEnd, WorkflowRecord};
pub use events::RuntimeEvent;
use recovery::Begin;

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

/// How this runtime runs workflows.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Who owns the workflows this runtime starts; recovery resumes only its own.
    pub executor_id: String,
    pub limits: InstanceLimits,
    /// Recoveries allowed after the first execution (DBOS's default: 100).
    pub max_recovery_attempts: u32,
    /// Name of the configured instance (`default` for `reprise run`).
    pub instance: String,
    /// Config values the guest reads through `workflow-info`.
    pub config: BTreeMap<String, String>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            executor_id: "local".into(),
            limits: InstanceLimits::default(),
            max_recovery_attempts: 100,
            instance: "default".into(),
            config: BTreeMap::new(),
        }
    }
}

/// What every execution shares.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) engine: Engine,
    pub(crate) options: RuntimeOptions,
    events: broadcast::Sender<RuntimeEvent>,
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
        self.emit(|| RuntimeEvent::WorkflowFinished {
            workflow_id: id.to_string(),
            status: record.status,
        });
        Ok(record)
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
            max_memory_bytes: engine.max_memory_bytes.max(options.limits.memory_bytes),
            ..engine.clone()
        };
        let (events, _) = broadcast::channel(65_536);
        Ok(Runtime {
            shared: Arc::new(Shared {
                store,
                engine: Engine::new(&engine_options)?,
                options,
                events,
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

    /// Creates a workflow (or returns the existing one with that id) after checking that the
    /// component defines it and the input is JSON. Nothing is written when a check fails.
    pub async fn start(
        &self,
        component: &LoadedComponent,
        workflow: &str,
        input: &str,
        id: Option<String>,
    ) -> Result<Inserted, RuntimeError> {
        self.insert(component, workflow, input, id, false).await
    }

    async fn insert(
        &self,
        component: &LoadedComponent,
        workflow: &str,
        input: &str,
        id: Option<String>,
        begin_execution: bool,
    ) -> Result<Inserted, RuntimeError> {
        if !component.has_workflow(workflow) {
            return Err(RuntimeError::UnknownWorkflow {
                name: workflow.to_string(),
                available: component.definitions.workflows.clone(),
            });
        }
        serde_json::from_str::<serde::de::IgnoredAny>(input)
            .map_err(|e| RuntimeError::InvalidInput(e.to_string()))?;
        let options = &self.shared.options;
        let new = NewWorkflow {
            id: id.unwrap_or_else(new_workflow_id),
            name: workflow.to_string(),
            input: input.to_string(),
            executor_id: options.executor_id.clone(),
            app_version: component.digest.clone(),
            instance: options.instance.clone(),
            config: serde_json::to_string(&options.config).unwrap_or_else(|_| "{}".into()),
            max_recovery_attempts: options.max_recovery_attempts,
            begin_execution,
        };
        Ok(self.shared.store.insert_workflow(&new).await?)
    }

    /// Runs a workflow to a terminal status, recovering it after traps.
    pub async fn drive(&self, workflow_id: &str) -> Result<WorkflowRecord, RuntimeError> {
        recovery::drive(&self.shared, Begin::Id(workflow_id.to_string())).await
    }

    /// Starts (or joins, by id) a workflow and runs it to the end.
    pub async fn run(
        &self,
        component: &LoadedComponent,
        workflow: &str,
        input: &str,
        id: Option<String>,
    ) -> Result<WorkflowRecord, RuntimeError> {
        let inserted = self.insert(component, workflow, input, id, true).await?;
        if inserted.created {
            recovery::drive(&self.shared, Begin::Created(Box::new(inserted.record))).await
        } else {
            self.drive(&inserted.record.id).await
        }
    }

    /// Resumes every PENDING workflow this executor owns and waits for them.
    pub async fn recover(&self) -> Result<Vec<WorkflowRecord>, RuntimeError> {
        recovery::recover_pending(&self.shared).await
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
