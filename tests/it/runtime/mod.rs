//! The runtime, mostly in this process on a real SQLite file: failure semantics and traps,
//! recovery, children, messages, sleeps and deadlines, parking, memory limits, I/O grants,
//! workflow ids and bad input.

mod bad_input;
mod bundles;
mod cancel_blocking;
pub(crate) mod children;
mod continue_as_new;
mod deadlines;
mod dns;
mod durable_sleep;
pub(crate) mod failure_semantics;
mod idempotency;
pub(crate) mod io_grants;
pub(crate) mod memory_limits;
pub(crate) mod messages;
mod parking;
mod recovery_bounds;
mod step_entropy;
mod step_timeouts;
mod trap_policy;
pub(crate) mod traps;
mod unwritten;
pub(crate) mod versions;
mod workflow_ids;
