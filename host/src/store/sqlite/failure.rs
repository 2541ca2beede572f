//! What a failed statement means for the rest of its write batch: whether it sank the whole
//! transaction or only itself, whether the connection survives it, and the copies of a
//! batch-wide failure that every request it sank receives.

use std::io;

use sqlx::error::DatabaseError;

use crate::store::StoreError;

/// Whether `err` may have ended the writer's transaction rather than just its own statement.
pub(super) fn poisons_transaction(err: &StoreError) -> bool {
    let (StoreError::Database(err) | StoreError::Locked(err)) = err else {
        // Our own verdicts (unknown workflow, duplicate step, corrupt row) change nothing.
        return false;
    };
    match err {
        // SQLite documents that these primary codes leave the transaction open: SQLITE_ERROR,
        // SQLITE_TOOBIG, SQLITE_CONSTRAINT, SQLITE_MISMATCH, SQLITE_RANGE.
        sqlx::Error::Database(db) => {
            !matches!(primary_code(db.as_ref()), Some(1 | 18 | 19 | 20 | 25))
        }
        // Failures while binding or decoding happen on our side of the connection.
        sqlx::Error::Encode(_)
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::RowNotFound => false,
        _ => true,
    }
}

fn primary_code(db: &dyn DatabaseError) -> Option<i32> {
    db.code()?.parse::<i32>().ok().map(|code| code & 0xff)
}

/// Whether the connection's worker thread is gone, taking the connection with it.
pub(super) fn is_crash(err: &StoreError) -> bool {
    matches!(
        err,
        StoreError::Database(sqlx::Error::WorkerCrashed)
            | StoreError::Locked(sqlx::Error::WorkerCrashed)
    )
}

/// Makes copies of a batch-wide failure, one for each request it affects (`sqlx::Error` is not
/// `Clone`), keeping the `Locked` classification so callers can still tell contention from
/// damage.
pub(super) fn echo(cause: &StoreError) -> impl Fn() -> StoreError + use<> {
    let (locked, text) = match cause {
        StoreError::Locked(err) => (true, err.to_string()),
        StoreError::Database(err) => (false, err.to_string()),
        other => (false, other.to_string()),
    };
    move || {
        let copy = sqlx::Error::Io(io::Error::other(format!("write batch failed: {text}")));
        if locked {
            StoreError::Locked(copy)
        } else {
            StoreError::Database(copy)
        }
    }
}
