//! The step lane: a step's checkpoint committed on the calling thread while the writer is idle.
//!
//! Through the writer, a step crosses to the writer task, to sqlx's SQLite worker thread and
//! back: two thread hand-offs that cost three times the commit itself. A workflow running alone
//! does not need them, so its step goes straight into SQLite through a connection of its own.
//! Only a workflow that looks alone takes the lane — it wrote last — since a step committed on
//! the spot can share no commit: workflows taking turns keep going through the writer, which
//! commits theirs together. And only at `process` durability, where a commit waits for no
//! fsync: at `synced` a commit on the caller's thread would hold that thread (and every
//! workflow it runs) for the fsync, which the writer shares among all who wait — measured, the
//! queue lost a fifth of its throughput — so there every step goes through the writer.
//! The writer holds the lane's turn for each batch, so only one of them writes at a time and
//! neither ever waits in SQLite's busy handler for the other. A step that finds the writer busy,
//! requests queued, or the turn taken goes through the writer and shares its commit: group
//! commit under load is unchanged.
//!
//! The lane only ever answers a commit that returned OK. Anything else — a fenced or duplicate
//! step, a vanished workflow, a full disk — is declined, and the writer's path runs the same
//! insert again and gives the error it always gave (a failed autocommit wrote nothing).

use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, named_params};
use tokio::sync::Mutex;

use super::Durability;
use super::file::{Committed, FileIdentity};
use crate::StoreError;
use crate::shared::insert_step;
use crate::written::StepRow;

/// The insert the writer's path runs for one step (`Dialect::record_step`), without
/// `RETURNING`: a row count of 0 says what an empty `RETURNING` says there.
const INSERT_STEP: &str = insert_step!();

/// The lane's connection, or `None` until it is (re)opened; whoever holds the mutex may write.
pub(super) type Turn = Arc<Mutex<Option<Connection>>>;
/// A turn taken: the writer holds it until its batch is committed or rolled back.
pub(super) type Taken<'a> = tokio::sync::MutexGuard<'a, Option<Connection>>;

/// What opens the lane's connection and settles its commits.
pub(super) struct Lane {
    turn: Turn,
    path: Box<Path>,
    commits: Arc<AtomicU64>,
    /// Commits made on the lane (part of `commits`).
    own_commits: AtomicU64,
    file: FileIdentity,
    /// Who wrote last: a hash of the workflow's id.
    last: AtomicU64,
    hasher: RandomState,
}

impl Lane {
    /// A lane for the database file at `path`; `None` at `synced` durability, and in memory,
    /// where a second connection would open a different database.
    pub(super) fn new(
        path: &Path,
        durability: Durability,
        commits: Arc<AtomicU64>,
    ) -> Option<Lane> {
        if durability == Durability::Synced {
            return None;
        }
        let file = FileIdentity::of(path)?;
        Some(Lane {
            turn: Arc::new(Mutex::new(None)),
            path: path.into(),
            commits,
            own_commits: AtomicU64::new(0),
            file,
            last: AtomicU64::new(0),
            hasher: RandomState::new(),
        })
    }

    /// The turn the writer takes for each batch.
    pub(super) fn turn(&self) -> Turn {
        Arc::clone(&self.turn)
    }

    /// Commits made on the lane so far.
    pub(super) fn commits(&self) -> u64 {
        self.own_commits.load(Ordering::Relaxed)
    }

    /// Notes a write of `workflow_id`; whether the workflow looks alone: it wrote last.
    pub(super) fn note(&self, workflow_id: &str) -> bool {
        let key = self.hasher.hash_one(workflow_id);
        self.last.swap(key, Ordering::Relaxed) == key
    }

    /// Commits `step` here and now if its workflow looks alone and nobody else is writing
    /// (`writer_idle`: no request queued): `None` when the lane declined (the caller sends the
    /// step to the writer), else the commit's answer.
    pub(super) fn try_record(
        &self,
        step: &StepRow,
        writer_idle: bool,
    ) -> Option<Result<(), StoreError>> {
        if !self.note(&step.workflow_id) || !writer_idle {
            return None;
        }
        let mut turn = self.turn.try_lock().ok()?;
        let inserted = self.insert(&mut turn, step);
        match inserted {
            Ok(1) => {}
            Ok(_) => return None,
            Err(err) => {
                if !leaves_connection_fit(&err) {
                    // Whatever went wrong may have left the connection unfit: open afresh.
                    tracing::debug!(error = %err, "the step lane declined a step");
                    *turn = None;
                }
                return None;
            }
        }
        drop(turn);
        self.own_commits.fetch_add(1, Ordering::Relaxed);
        let committed = Committed {
            count: &self.commits,
            file: Some(&self.file),
        };
        Some(committed.settle().map_err(|gone| gone()))
    }

    /// Runs the insert on the lane's connection, opening it first if need be; the row count.
    fn insert(&self, turn: &mut Taken<'_>, step: &StepRow) -> rusqlite::Result<usize> {
        if turn.is_none() {
            **turn = Some(self.open()?);
        }
        let Some(conn) = turn.as_ref() else {
            return Ok(0);
        };
        let mut insert = conn.prepare_cached(INSERT_STEP)?;
        insert.execute(named_params! {
            "$1": step.workflow_id,
            "$2": i64::from(step.function_id),
            "$3": step.name,
            "$4": step.output,
            "$5": step.error,
            "$6": i64::from(step.attempts),
            "$7": step.started_at,
            "$8": step.completed_at,
            "$9": step.epoch,
            "$10": step.kind,
            "$11": step.args,
        })
    }

    /// A connection with the writer's pragmas (the file is already in WAL mode).
    fn open(&self) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        // No waiting for another process's write lock on the caller's thread: the writer
        // waits for it on its own.
        conn.busy_timeout(Duration::ZERO)?;
        // The writer's pragmas at `process`, the only level with a lane. Checkpoints are left
        // to the writer: one on the caller's thread would hold it for the copy and its fsyncs.
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0;",
            Durability::Process.pragma()
        ))?;
        Ok(conn)
    }
}

/// A constraint failure undoes only its statement, and a lock held by another process keeps
/// it from starting: either leaves the connection as it was.
fn leaves_connection_fit(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(
            rusqlite::ErrorCode::ConstraintViolation
                | rusqlite::ErrorCode::DatabaseBusy
                | rusqlite::ErrorCode::DatabaseLocked
        )
    )
}
