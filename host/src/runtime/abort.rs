//! Why an execution stops before its workflow returns, other than a trap. Each travels out of
//! the guest as a `wasmtime::Error` and is told apart by downcasting in the executor.

use crate::store::StoreError;

/// The workflow was cancelled: the execution stops at this durable call.
#[derive(Debug, thiserror::Error)]
#[error("workflow was cancelled")]
pub(crate) struct Cancelled;

/// A store failure inside a durable call: not the guest's fault, so not a trap to recover.
/// The workflow stays PENDING and the error reaches whoever drives it.
#[derive(Debug, thiserror::Error)]
#[error("checkpoint failed: {0}")]
pub(crate) struct HostFailure(#[source] pub(crate) StoreError);

/// The guest broke the step protocol (a bug in a hand-written guest, not in user workflows):
/// deterministic, so the workflow fails rather than replaying into it again.
#[derive(Debug, thiserror::Error)]
#[error("guest protocol violation: {0}")]
pub(crate) struct ProtocolViolation(pub(crate) String);

/// A [`ProtocolViolation`] as the error a host call returns.
pub(crate) fn violation(message: String) -> wasmtime::Error {
    wasmtime::Error::new(ProtocolViolation(message))
}

/// A [`HostFailure`] as the error a host call returns.
pub(crate) fn host_failure(err: StoreError) -> wasmtime::Error {
    wasmtime::Error::new(HostFailure(err))
}
