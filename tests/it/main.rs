//! The integration tests of Reprise, in one test binary: each binary would link wasmtime, sqlx
//! and axum again, so the suite is one crate with a module per concern. A test's name is its
//! module path (`runtime::traps::a_panic_is_classified_with_its_message`); run a group with a
//! filter, e.g. `cargo test -p reprise-tests --test it -- store::`.
//!
//! All tests share this process: what one test sets for the whole process (environment
//! variables, the current directory, a global tracing subscriber, a fixed port or file name)
//! would leak into the others, so none does. A child process gets its own environment through
//! `Command::env`, and a test's files go to its own temp dir. Shared on purpose: the throwaway
//! Postgres cluster of `common/postgres.rs` (started on first use, a fresh database per test,
//! stopped when this process exits), the compiled-component cache of `common::engine_options`,
//! and the guest components (copies the build script made, which no test writes: the tests
//! that build guests do so in `guests/target`, under cargo's lock).
//!
//! - `common/`: the harness: guests built by `tests/support/build.rs`, a runtime on its own
//!   database, a real `reprise serve`, raw HTTP, outside services, the Postgres cluster.
//! - `guests`: the guest components as constants, and the check that each has a test.
//! - `store/`: the storage contract on both backends, and what the store does on disk.
//! - `runtime/`: failures, traps, recovery, children, messages, sleeps, deadlines, parking,
//!   limits and I/O grants, in process.
//! - `server/`: a real `reprise serve`: its API, hostile clients, the web UI, logs, traces,
//!   schedules, the approval from outside.
//! - `cli/`: the command line, the README's guide, the toolchain, guest crates' own tests and
//!   the component cache.
//! - `hosts/`: several hosts, or one killed and restarted: Postgres, leases, queues across
//!   restarts, shutdown, crash recovery.

mod cli;
mod common;
mod guests;
mod hosts;
mod runtime;
mod server;
mod store;
