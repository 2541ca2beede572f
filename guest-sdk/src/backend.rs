//! Where the SDK's durable calls go: the host's `durable` imports inside a component, the
//! in-memory [`crate::testing`] host under `cargo test`. The rest of the SDK does not know
//! which.

#[cfg(target_family = "wasm")]
pub(crate) use crate::__bindings::reprise::workflow::durable::*;

#[cfg(not(target_family = "wasm"))]
pub(crate) use crate::testing::host::*;

/// Inside a component no harness stands in for a step's body.
#[cfg(target_family = "wasm")]
pub(crate) fn stubbed(_step: &str, _attempt: u32) -> Option<Result<Vec<u8>, String>> {
    None
}
