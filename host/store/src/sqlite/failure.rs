//! What a failed statement means for the rest of its write batch: whether it sank the whole
//! transaction or only itself, and whether the connection survives it. Every request a
//! batch-wide failure sank receives a copy of it (`crate::echo`).

use sqlx::error::DatabaseError;

use crate::StoreError;
use crate::echo::echo;

/// Whether `err` may have ended the writer's transaction rather than just its own statement.
pub(super) fn poisons_transaction(err: &StoreError) -> bool {
    let Some(err) = driver_error(err) else {
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

/// For a bulk statement that failed: copies of its failure for every request of its chunk when
/// it may have sunk the whole transaction, `None` when it undid only itself (a constraint), so
/// its requests can be tried one by one.
pub(super) fn batch_wide(err: sqlx::Error) -> Option<impl Fn() -> StoreError + use<>> {
    let cause = StoreError::from(err);
    poisons_transaction(&cause).then(|| echo(&cause))
}

fn primary_code(db: &dyn DatabaseError) -> Option<i32> {
    db.code()?.parse::<i32>().ok().map(|code| code & 0xff)
}

/// Whether the connection's worker thread is gone, taking the connection with it.
pub(super) fn is_crash(err: &StoreError) -> bool {
    matches!(driver_error(err), Some(sqlx::Error::WorkerCrashed))
}

/// The driver's error behind a database failure; `None` for the store's own verdicts.
fn driver_error(err: &StoreError) -> Option<&sqlx::Error> {
    match err {
        StoreError::Database(err) | StoreError::Locked(err) | StoreError::Storage(err) => {
            err.driver()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::error::Error as StdError;
    use std::io;

    use sqlx::error::ErrorKind;

    use super::*;

    /// A database error of SQLite's shape: code 13 is SQLITE_FULL.
    #[derive(Debug, thiserror::Error)]
    #[error("database or disk is full")]
    struct Full;

    impl DatabaseError for Full {
        fn message(&self) -> &str {
            "database or disk is full"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed("13"))
        }
        fn as_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn StdError + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn StdError + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> ErrorKind {
            ErrorKind::Other
        }
    }

    #[test]
    fn copies_keep_what_callers_tell_failures_apart_by() {
        let cause = StoreError::Database(sqlx::Error::Database(Box::new(Full)).into());
        let copy = echo(&cause)();
        let Some(sqlx::Error::Database(db)) = driver_error(&copy) else {
            panic!("{copy:?}");
        };
        assert_eq!(db.code().as_deref(), Some("13"));
        assert_eq!(db.message(), "database or disk is full");
        assert!(poisons_transaction(&copy));
        assert!(copy.to_string().contains("write batch failed"), "{copy}");

        let locked = StoreError::Locked(
            sqlx::Error::Io(io::Error::new(io::ErrorKind::TimedOut, "busy")).into(),
        );
        let copy = echo(&locked)();
        assert!(matches!(copy, StoreError::Locked(_)), "{copy:?}");
        assert!(
            matches!(driver_error(&copy), Some(sqlx::Error::Io(io)) if io.kind() == io::ErrorKind::TimedOut),
            "{copy:?}"
        );

        let crashed = StoreError::Database(sqlx::Error::WorkerCrashed.into());
        assert!(is_crash(&echo(&crashed)()));
    }
}
