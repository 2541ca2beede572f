//! Why an execution stops before its workflow returns, other than a trap. Every such stop
//! leaves the guest as a `wasmtime::Error` carrying one [`Interrupt`], which the executor tells
//! apart from a trap with a single downcast.

use crate::runtime::execution::history::NonDeterminism;
use crate::runtime::waiting::wake::Wake;
use reprise_store::StoreError;

/// A host call's decision to stop the execution here.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Interrupt {
    /// The workflow was cancelled: the execution stops at this durable call.
    #[error("workflow was cancelled")]
    Cancelled,
    /// The workflow waits for `Wake` and gives back its instance; a replay picks it up here.
    #[error("workflow parked until {0}")]
    Parked(Wake),
    /// A store failure inside a durable call: not the guest's fault, so not a trap to recover.
    /// The workflow stays PENDING and the error reaches whoever drives it.
    #[error("checkpoint failed: {0}")]
    HostFailure(#[source] StoreError),
    /// The code asks for another durable call than the one recorded at this position.
    #[error(transparent)]
    NonDeterminism(NonDeterminism),
    /// The guest broke the step protocol.
    #[error(transparent)]
    Violation(ProtocolViolation),
    /// The workflow ends this run and starts again with this input (JSON text).
    #[error("workflow continues as new")]
    ContinueAsNew(String),
    /// A dry replay reached the first call with nothing recorded: it stops there.
    #[error("replay reached position {} ({:?}), which is not recorded", .0.function_id, .0.name)]
    Frontier(Frontier),
}

/// Where a dry replay stopped: the first call the code would execute, and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontier {
    pub function_id: u32,
    pub name: String,
}

/// Stops a dry replay at `at`.
pub(crate) fn frontier(at: Frontier) -> wasmtime::Error {
    Interrupt::Frontier(at).into()
}

/// The guest broke the step protocol (a bug in a hand-written guest, not in user workflows):
/// deterministic, so the workflow fails rather than replaying into it again.
#[derive(Debug, thiserror::Error)]
#[error("guest protocol violation: {0}")]
pub(crate) struct ProtocolViolation(pub(crate) String);

/// A [`ProtocolViolation`] as the error a host call returns.
pub(crate) fn violation(message: String) -> wasmtime::Error {
    Interrupt::Violation(ProtocolViolation(message)).into()
}

/// A [`Interrupt::HostFailure`] as the error a host call returns.
pub(crate) fn host_failure(err: StoreError) -> wasmtime::Error {
    Interrupt::HostFailure(err).into()
}

/// Stops the execution to park until `wake`.
pub(crate) fn parked(wake: Wake) -> wasmtime::Error {
    Interrupt::Parked(wake).into()
}

/// Stops the execution because its workflow was cancelled.
pub(crate) fn cancelled() -> wasmtime::Error {
    Interrupt::Cancelled.into()
}

/// Interrupts an execution at a position whose recorded call differs from the requested one.
pub(crate) fn diverged(err: NonDeterminism) -> wasmtime::Error {
    Interrupt::NonDeterminism(err).into()
}
