//! Why the runtime could not do what was asked.

use crate::engine::EngineError;
use crate::runtime::ids::InvalidId;
use reprise_store::StoreError;

/// Why the runtime could not do what was asked. Guest failures are not errors here: they end
/// up in the workflow's status.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The component could not be loaded or instantiated.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The database refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The component defines no workflow of that name; nothing was written.
    #[error("component defines no workflow named {name:?}; it defines: {}", available.join(", "))]
    UnknownWorkflow {
        /// The name asked for.
        name: String,
        /// The workflows the component defines.
        available: Vec<String>,
    },
    /// The input is not JSON; nothing was written.
    #[error("input is not valid JSON: {0}")]
    InvalidInput(String),
    /// A message does not match the type its destination's code declares for the topic;
    /// nothing was written.
    #[error("{0}")]
    MessageRefused(String),
    /// No queue of that name is configured; nothing was written.
    #[error("no queue named {name:?}; configured queues: {}", if available.is_empty() { "none".to_string() } else { available.join(", ") })]
    UnknownQueue {
        /// The name asked for.
        name: String,
        /// The configured queues.
        available: Vec<String>,
    },
    /// A caller-chosen workflow id breaks the rule of `reprise_protocol::ids`; nothing was
    /// written.
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    /// No instance of that name is configured; nothing was written.
    #[error("no instance named {0:?}")]
    UnknownInstance(String),
    /// A workflow refers to a component digest the database does not hold.
    #[error("component {0} is not stored in the database")]
    MissingComponent(String),
    /// No workflow has this id.
    #[error("no workflow with id {0}")]
    UnknownWorkflowId(String),
    /// A start named the id of an existing workflow of another name or instance: starting
    /// with an existing id returns that workflow only when it is the same start. Nothing was
    /// written.
    #[error(
        "workflow id {id} is taken by a {name:?} workflow of instance {instance:?}: choose \
         another id"
    )]
    IdTaken {
        /// The id asked for.
        id: String,
        /// The existing workflow's name.
        name: String,
        /// The existing workflow's instance.
        instance: String,
    },
    /// A checkpoint could not be committed; the workflow stays PENDING. The store's error is
    /// kept whole (not as a source, so a report prints it once).
    #[error("checkpoint failed: {0}")]
    Checkpoint(StoreError),
    /// The workflow is stored (it may have run steps) but could not go on here, most often
    /// because a checkpoint failed; it stays PENDING and resumes at the next recovery.
    #[error(
        "workflow {workflow_id} is stored but did not finish: {cause}; it stays PENDING and \
         resumes with `reprise recover`"
    )]
    Unfinished {
        /// The workflow left PENDING.
        workflow_id: String,
        /// Why it stopped (kept whole, not as a source, so a report prints it once).
        cause: Box<RuntimeError>,
    },
    /// A memory limit beyond what the instance pool gives any instance.
    #[error(
        "memory limit of {asked} bytes is more than this host's instances may have ({pool} bytes): \
         raise an instance's memory_limit (or a trap policy's cap) and restart it"
    )]
    MemoryLimitTooLarge {
        /// The limit asked for.
        asked: u64,
        /// The pool's per-instance size.
        pool: u64,
    },
    /// A memory limit below what the workflow's component needs to start an instance.
    #[error(
        "memory limit of {asked} bytes is below what this workflow's component needs to start \
         ({minimum} bytes, its first memory's initial size)"
    )]
    MemoryLimitTooSmall {
        /// The limit asked for.
        asked: u64,
        /// The component's least workable limit.
        minimum: u64,
    },
    /// An instance's quota refused the start (see `quotas`); nothing was written.
    #[error("{0}")]
    QuotaExceeded(String),
    /// A workflow's history does not replay cleanly on the code asked for; nothing changed.
    #[error("{0}")]
    Diverges(String),
    /// A background task panicked or was aborted.
    #[error("background task failed: {0}")]
    Task(String),
}

impl RuntimeError {
    /// Whether the workflow was taken over by another execution (see [`StoreError::Fenced`]):
    /// this one stopped and must leave the workflow to its new owner.
    pub fn is_fenced(&self) -> bool {
        match self {
            RuntimeError::Store(StoreError::Fenced { .. })
            | RuntimeError::Checkpoint(StoreError::Fenced { .. }) => true,
            RuntimeError::Unfinished { cause, .. } => cause.is_fenced(),
            _ => false,
        }
    }

    /// Whether the database failed in a way that may pass by itself (see
    /// [`StoreError::is_transient`]): the drive is tried again, not abandoned.
    pub fn is_transient(&self) -> bool {
        match self {
            RuntimeError::Store(err) | RuntimeError::Checkpoint(err) => err.is_transient(),
            RuntimeError::Unfinished { cause, .. } => cause.is_transient(),
            _ => false,
        }
    }

    /// Marks an error met while driving a stored workflow: it did not finish and stays PENDING.
    pub(crate) fn unfinished(workflow_id: &str, cause: RuntimeError) -> RuntimeError {
        match cause {
            already @ RuntimeError::Unfinished { .. } => already,
            cause => RuntimeError::Unfinished {
                workflow_id: workflow_id.to_owned(),
                cause: Box::new(cause),
            },
        }
    }
}
