//! More than one host, or one host killed and restarted: several `reprise serve` on one
//! Postgres, the runtime on Postgres, executor leases, queue limits across restarts, shutdown
//! under load, and a `reprise run` resumed after SIGKILL.

mod crash_recovery;
mod executors;
mod many_hosts;
mod postgres;
mod queue_restarts;
mod run_ownership;
mod shutdown;
