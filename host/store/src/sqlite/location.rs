//! Where the database is: the URL or path a user gives, and the directory it must be in.

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::SqliteConnectOptions;

use crate::StoreError;

/// The connection options of `sqlite://path`, `sqlite:path` or a plain file path.
pub(super) fn location(url_or_path: &str) -> Result<SqliteConnectOptions, StoreError> {
    if !url_or_path.starts_with("sqlite:") {
        return Ok(SqliteConnectOptions::new().filename(url_or_path));
    }
    SqliteConnectOptions::from_str(url_or_path).map_err(|source| StoreError::Open {
        url: url_or_path.to_owned(),
        source: source.into(),
    })
}

/// Refuses a path whose directory is missing up front: SQLite would only say "unable to open
/// database file", which does not tell the user what is wrong.
pub(super) fn check_parent_directory(file: &Path) -> Result<(), sqlx::Error> {
    let Some(parent) = file.parent() else {
        return Ok(());
    };
    if parent.as_os_str().is_empty() || parent.is_dir() {
        return Ok(());
    }
    Err(sqlx::Error::InvalidArgument(format!(
        "directory {} does not exist",
        parent.display()
    )))
}
