//! What can go wrong storing: each error names what failed so the CLI can say it plainly, and
//! none names the driver's types.

use crate::WorkflowStatus;

/// Errors from the storage layer; each names what failed so the CLI can say it plainly.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or created at all.
    #[error("cannot open database {url}: {source}")]
    Open {
        /// The database URL or path.
        url: String,
        #[source]
        /// Why.
        source: DbError,
    },
    /// Schema migration failed (a newer or foreign database).
    #[error("cannot migrate database schema: {0}")]
    Migrate(#[source] DbError),
    /// Another process holds the write lock longer than the busy timeout.
    #[error("database is locked by another process (busy timeout exceeded): {0}")]
    Locked(#[source] DbError),
    /// The database cannot be written: the disk is full, a size or file-size limit was reached,
    /// or the disk failed. What was being written is not stored.
    #[error("cannot write the database (disk full, size limit or I/O error): {0}")]
    Storage(#[source] DbError),
    /// The database file was deleted or replaced while the store had it open: commits since
    /// then went to a file that no name leads to and are lost when the process exits.
    #[error(
        "the database file {} was deleted or replaced while in use; what was written since is lost with it",
        .0.display()
    )]
    FileGone(std::path::PathBuf),
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(#[source] DbError),
    /// A step outcome is already recorded at this position: another execution of the same
    /// workflow got there first.
    #[error("workflow {workflow_id}: step {function_id} is already recorded by another execution")]
    StepAlreadyRecorded {
        /// The workflow.
        workflow_id: String,
        /// The position.
        function_id: u32,
    },
    /// The write was made under an ownership epoch the workflow no longer has: another
    /// execution took it over (a host adopted it after this one's lease expired, or an
    /// operator resumed it). Nothing was written; the execution that holds `epoch` must stop.
    #[error(
        "workflow {workflow_id} was taken over by another execution (epoch {current}; this one \
         holds {epoch}): its write is refused and this execution stops"
    )]
    Fenced {
        /// The workflow.
        workflow_id: String,
        /// The epoch the refused write was made under.
        epoch: u64,
        /// The workflow's epoch now.
        current: u64,
    },
    /// The workflow does not exist.
    #[error("no workflow with id {0}")]
    UnknownWorkflow(String),
    /// The workflow ran, ended or moved between the check of its history and the switch of
    /// its version: nothing was changed.
    #[error(
        "workflow {0} changed while its history was checked (it ran, ended or was moved): nothing was changed; check it again"
    )]
    ChangedWhileChecked(String),
    /// A new workflow's id is taken where reusing it would be wrong (a fork must not join an
    /// existing workflow the way an idempotent start does).
    #[error("a workflow with id {0} already exists")]
    WorkflowExists(String),
    /// Another workflow holding this deduplication id is still ENQUEUED or PENDING on the queue:
    /// the caller asked for at most one at a time.
    #[error("deduplication id {deduplication_id} is already active on queue {queue}")]
    Duplicate {
        /// The queue.
        queue: String,
        /// The deduplication id.
        deduplication_id: String,
    },
    /// The workflow cannot be resumed from its status (it succeeded: running it again would
    /// repeat its effects for nothing).
    #[error("workflow {workflow_id} is {status} and cannot be resumed")]
    NotResumable {
        /// The workflow.
        workflow_id: String,
        /// Its status.
        status: WorkflowStatus,
    },
    /// A stored value does not parse (a hand-edited or corrupted row).
    #[error("corrupt row in {table}: {message}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A stored value does not decode as its column's type (a hand-edited or corrupted row);
    /// the source names the column.
    #[error("corrupt row in {table}: a stored value cannot be read")]
    CorruptValue {
        /// The table.
        table: &'static str,
        #[source]
        /// Why the value did not decode.
        source: DbError,
    },
    /// The workflow closed this stream: nothing more can be written to it.
    #[error("stream {key:?} of workflow {workflow_id} is closed")]
    StreamClosed {
        /// The workflow.
        workflow_id: String,
        /// The stream's key.
        key: String,
    },
    /// The background writer stopped (the store was closed or its task panicked).
    #[error("database writer has stopped")]
    WriterGone,
    /// A replay that executes nothing was asked to write or wait.
    #[error("a dry replay executes nothing: {0}")]
    DryRun(&'static str),
}

impl StoreError {
    /// Whether trying again soon may succeed: the database was locked or busy, a transaction
    /// lost a serialization conflict or a deadlock, or the connection failed or timed out.
    /// Everything else (bad rows, full disks, refused writes) stays as it is until someone acts.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Locked(_) => true,
            StoreError::Database(err) => err.driver().is_some_and(transient),
            _ => false,
        }
    }
}

/// Whether a driver error may pass by itself. SQLSTATEs: `40001` serialization failure,
/// `40P01` deadlock, `55P03` lock not available, `57P01`-`57P03` the server shutting down or
/// starting, class `08` connection failures.
fn transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            matches!(&*code, "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03")
                || code.starts_with("08")
                // SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
                || code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
        }),
        _ => false,
    }
}

/// What the database driver said, kept whole for the message and the source chain but opaque:
/// callers tell failures apart by [`StoreError`]'s variants, never by the driver's types.
#[derive(Debug)]
pub struct DbError(Cause);

#[derive(Debug)]
enum Cause {
    Driver(sqlx::Error),
    Migration(sqlx::migrate::MigrateError),
}

impl DbError {
    /// The driver's error, for the store's own classification.
    pub(crate) fn driver(&self) -> Option<&sqlx::Error> {
        match &self.0 {
            Cause::Driver(err) => Some(err),
            Cause::Migration(_) => None,
        }
    }
}

impl From<sqlx::Error> for DbError {
    fn from(err: sqlx::Error) -> Self {
        DbError(Cause::Driver(err))
    }
}

impl From<sqlx::migrate::MigrateError> for DbError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        DbError(Cause::Migration(err))
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Cause::Driver(err) => err.fmt(f),
            Cause::Migration(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Cause::Driver(err) => err.source(),
            Cause::Migration(err) => err.source(),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            let message = db.message();
            if message.contains("database is locked") || message.contains("database is busy") {
                return StoreError::Locked(err.into());
            }
            if cannot_write(db.code().as_deref()) {
                return StoreError::Storage(err.into());
            }
        }
        StoreError::Database(err.into())
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(err.into())
    }
}

/// Whether a database error code says the storage refused a write. SQLite's codes are numbers
/// (primary code in the low byte): SQLITE_IOERR (10, with its extended codes) and SQLITE_FULL
/// (13). Postgres's are SQLSTATEs: `53100` disk full, `58030` I/O error.
fn cannot_write(code: Option<&str>) -> bool {
    match code {
        Some("53100" | "58030") => true,
        Some(code) => code
            .parse::<i32>()
            .is_ok_and(|code| matches!(code & 0xff, 10 | 13)),
        None => false,
    }
}
