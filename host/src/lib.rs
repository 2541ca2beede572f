//! Reprise: a durable workflow host. Workflows and steps written in Rust, compiled to
//! WebAssembly components, checkpointed step by step and replayed after any failure.

pub mod bindings;
pub mod cli;
pub mod config;
pub mod engine;
pub mod limits;
pub mod metrics;
pub mod queue;
pub mod runtime;
pub mod sandbox;
pub mod server;
pub mod store;

pub use engine::{Definitions, EngineOptions, LoadedComponent};
pub use limits::{InstanceLimits, TrapClass};
pub use runtime::{Runtime, RuntimeError, RuntimeEvent, RuntimeOptions};
pub use store::{Durability, SqliteStore, Store, WorkflowRecord, WorkflowStatus};
