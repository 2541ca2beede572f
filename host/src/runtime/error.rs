//! Why the runtime could not do what was asked.

use crate::engine::EngineError;
use crate::store::StoreError;

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
    /// No queue of that name is configured; nothing was written.
    #[error("no queue named {name:?}; configured queues: {}", if available.is_empty() { "none".to_string() } else { available.join(", ") })]
    UnknownQueue {
        /// The name asked for.
        name: String,
        /// The configured queues.
        available: Vec<String>,
    },
    /// No instance of that name is configured; nothing was written.
    #[error("no instance named {0:?}")]
    UnknownInstance(String),
    /// A workflow refers to a component digest the database does not hold.
    #[error("component {0} is not stored in the database")]
    MissingComponent(String),
    /// No workflow has this id.
    #[error("no workflow with id {0}")]
    UnknownWorkflowId(String),
    /// A checkpoint could not be committed; the workflow stays PENDING. The store's error is
    /// kept whole (not as a source, so a report prints it once).
    #[error("checkpoint failed: {0}")]
    Checkpoint(StoreError),
    /// A background task panicked or was aborted.
    #[error("background task failed: {0}")]
    Task(String),
}
