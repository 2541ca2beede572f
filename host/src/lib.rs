//! Reprise: a durable workflow host. Workflows and steps written in Rust, compiled to
//! WebAssembly components, checkpointed step by step and replayed after any failure.
//!
//! Data flows one way: the `reprise` binary (host/cli) and the [`server`] ask the [`runtime`],
//! which asks the [`engine`] for instances and the [`store`] for history; nothing lower knows
//! anything higher.

#![warn(missing_docs)]

mod bindings;
pub mod engine;
pub mod grants;
mod https;
pub mod limits;
mod metrics;
pub mod node;
pub mod quotas;
pub mod runtime;
mod sandbox;
pub mod server;
/// The storage contract and its backends, from the `reprise-store` crate.
pub use reprise_store as store;
pub mod telemetry;

pub use engine::{Definitions, EngineOptions};
pub use limits::{InstanceLimits, TrapClass};
pub use runtime::{LoadedComponent, Runtime, RuntimeError, RuntimeEvent, RuntimeOptions};
pub use store::{Durability, SqliteStore, Store, WorkflowRecord, WorkflowStatus};
