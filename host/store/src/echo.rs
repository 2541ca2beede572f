//! Copies of one failure for every write it sank: a batch or a flush that fails as a whole
//! answers each of its requests with the same error. `sqlx::Error` is not `Clone`, so a copy
//! rebuilds what callers tell failures apart by instead of flattening the cause to text: the
//! classification (contention, full storage, other), a database error's code and kind, an I/O
//! error's kind, a crashed worker.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::io;

use sqlx::error::{DatabaseError, ErrorKind};

use crate::{DbError, StoreError};

/// Makes copies of a failure, one for each request it affects.
pub(crate) fn echo(cause: &StoreError) -> impl Fn() -> StoreError + use<> {
    let kept = |err: &DbError| {
        err.driver()
            .map_or_else(|| Kept::Text(err.to_string()), Kept::of)
    };
    let (class, copy): (fn(DbError) -> StoreError, _) = match cause {
        StoreError::Locked(err) => (StoreError::Locked, kept(err)),
        StoreError::Storage(err) => (StoreError::Storage, kept(err)),
        StoreError::Database(err) => (StoreError::Database, kept(err)),
        other => (StoreError::Database, Kept::Text(other.to_string())),
    };
    move || class(copy.make().into())
}

/// The parts of a `sqlx::Error` a copy keeps.
enum Kept {
    Database(BatchFailure),
    Io(io::ErrorKind, String),
    WorkerCrashed,
    /// Errors with nothing more to keep than their text.
    Text(String),
}

impl Kept {
    fn of(err: &sqlx::Error) -> Kept {
        match err {
            sqlx::Error::Database(db) => Kept::Database(BatchFailure {
                message: db.message().to_owned(),
                code: db.code().map(Cow::into_owned),
                kind: same_kind(&db.kind()),
                constraint: db.constraint().map(str::to_owned),
                table: db.table().map(str::to_owned),
            }),
            sqlx::Error::Io(io) => Kept::Io(io.kind(), io.to_string()),
            sqlx::Error::WorkerCrashed => Kept::WorkerCrashed,
            other => Kept::Text(other.to_string()),
        }
    }

    fn make(&self) -> sqlx::Error {
        match self {
            Kept::Database(failure) => sqlx::Error::Database(Box::new(failure.clone())),
            Kept::Io(kind, text) => {
                sqlx::Error::Io(io::Error::new(*kind, format!("write batch failed: {text}")))
            }
            Kept::WorkerCrashed => sqlx::Error::WorkerCrashed,
            Kept::Text(text) => {
                sqlx::Error::Io(io::Error::other(format!("write batch failed: {text}")))
            }
        }
    }
}

/// A database error that sank a write batch, as seen by the batch's other requests: the same
/// code, kind and message as the statement that failed.
#[derive(Debug, thiserror::Error)]
#[error("write batch failed: {message}")]
struct BatchFailure {
    message: String,
    code: Option<String>,
    kind: ErrorKind,
    constraint: Option<String>,
    table: Option<String>,
}

impl Clone for BatchFailure {
    fn clone(&self) -> Self {
        BatchFailure {
            message: self.message.clone(),
            code: self.code.clone(),
            kind: same_kind(&self.kind),
            constraint: self.constraint.clone(),
            table: self.table.clone(),
        }
    }
}

/// `ErrorKind` is not `Clone`.
fn same_kind(kind: &ErrorKind) -> ErrorKind {
    match kind {
        ErrorKind::UniqueViolation => ErrorKind::UniqueViolation,
        ErrorKind::ForeignKeyViolation => ErrorKind::ForeignKeyViolation,
        ErrorKind::NotNullViolation => ErrorKind::NotNullViolation,
        ErrorKind::CheckViolation => ErrorKind::CheckViolation,
        ErrorKind::ExclusionViolation => ErrorKind::ExclusionViolation,
        _ => ErrorKind::Other,
    }
}

impl DatabaseError for BatchFailure {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        self.code.as_deref().map(Cow::Borrowed)
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

    fn constraint(&self) -> Option<&str> {
        self.constraint.as_deref()
    }

    fn table(&self) -> Option<&str> {
        self.table.as_deref()
    }

    fn kind(&self) -> ErrorKind {
        same_kind(&self.kind)
    }
}
