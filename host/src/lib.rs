//! Reprise: a durable workflow host. Workflows and steps written in Rust, compiled to
//! WebAssembly components, checkpointed step by step and replayed after any failure.
//!
//! Data flows one way: the CLI and the server ask the [`runtime`], which asks the [`engine`]
//! for instances and the [`store`] for history; nothing lower knows anything higher.

#![warn(missing_docs)]

pub mod adoption;
mod bindings;
pub mod cli;
pub mod config;
pub mod engine;
pub mod grants;
mod https;
pub mod lease;
pub mod limits;
pub mod metrics;
pub mod queue;
pub mod retention;
pub mod runtime;
pub mod sandbox;
pub mod schedule;
pub mod scheduler;
pub mod server;
pub mod store;
pub mod telemetry;

pub use engine::{Definitions, EngineOptions};
pub use limits::{InstanceLimits, TrapClass};
pub use runtime::{LoadedComponent, Runtime, RuntimeError, RuntimeEvent, RuntimeOptions};
pub use store::{Durability, SqliteStore, Store, WorkflowRecord, WorkflowStatus};
