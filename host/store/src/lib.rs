//! The storage contract: what the runtime needs from a database, and nothing about WebAssembly.
//!
//! Tables mirror DBOS's system database (`workflow_status`, `operation_outputs`) plus the
//! components table that pins code by content digest. Every value is stored as JSON text so it
//! stays readable with `sqlite3`.

#![warn(missing_docs)]

mod contract;
mod echo;
mod error;
mod executors;
mod filter;
mod partitions;
pub mod postgres;
mod records;
mod rows;
mod schedules;
mod shared;
mod sqlite;
mod step_slots;
mod versions;
mod waits;
mod waits_sql;
mod written;

use std::sync::Arc;

pub use contract::{
    AdminStore, DispatchStore, ExecutionStore, LimitStore, MailboxStore, ScheduleStore, Store,
    VersionStore, roles,
};
pub use error::{DbError, StoreError};
pub use executors::{ExecutorRecord, Lapsed};
pub use postgres::PostgresStore;
pub use records::{
    Began, Inserted, NewWorkflow, QueueClaim, QueueDepth, RateLimit, StepFailureRecord, StepRecord,
    TrapRecord, WorkflowEnd, WorkflowFilter, WorkflowRecord,
};
pub use schedules::{CatchUp, ScheduleRecord};
pub use sqlite::{Durability, SqliteStore};
pub use step_slots::StepSlotRequest;
pub use versions::{ComponentVersion, RunRecord};
pub use waits::{
    Change, EventRecord, MessageRecord, NewMessage, StreamEntry, StreamInfo, StreamRead, Waited,
};

/// Opens the store a database URL names: `postgres://…` or `postgresql://…` is a
/// [`PostgresStore`] (whose durability is Postgres's own `synchronous_commit`, so `durability`
/// is ignored); anything else (`sqlite:…` or a file path) is a [`SqliteStore`] with
/// `durability`.
pub async fn open_store(url: &str, durability: Durability) -> Result<Arc<dyn Store>, StoreError> {
    if is_postgres_url(url) {
        Ok(Arc::new(PostgresStore::open(url).await?))
    } else {
        Ok(Arc::new(SqliteStore::open(url, durability).await?))
    }
}

/// Whether the database `url` names is there to read: a SQLite file that exists, or any
/// Postgres database (its server says whether it does when it is opened).
pub fn database_exists(url: &str) -> bool {
    is_postgres_url(url) || SqliteStore::exists(url)
}

/// Whether `url` names a Postgres database rather than a SQLite file.
pub fn is_postgres_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// Lifecycle of a workflow, named as in DBOS: one type for the database, the runtime and the
/// admin API, defined with the API's other types so the spellings cannot drift apart.
pub use reprise_protocol::wire::WorkflowStatus;

/// Milliseconds since the Unix epoch, the unit of every stored timestamp.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::is_postgres_url;

    #[test]
    fn postgres_urls_are_told_from_sqlite_locations() {
        assert!(is_postgres_url("postgres://u@h/db"));
        assert!(is_postgres_url("postgresql://h:5432/db"));
        assert!(is_postgres_url("PostgreSQL://h/db"));
        assert!(!is_postgres_url("sqlite://reprise.db"));
        assert!(!is_postgres_url("reprise.db"));
        assert!(!is_postgres_url("postgres.db"));
    }
}
