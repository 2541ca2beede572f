//! The writer's first connection and the schema's migration, when several processes open one
//! new database at once (a server and a CLI call started together). Turning the new file to
//! WAL answers "database is locked" without waiting, and the migration that loses the race
//! fails on the tables the winner created. Neither leaves anything half-done (each migration
//! is one transaction), so both are tried again until the other process is through.

use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

/// How long to keep trying while another process sets the database up: its busy timeout.
const PATIENCE: Duration = super::BUSY_TIMEOUT;
const PAUSE: Duration = Duration::from_millis(20);

/// Why the first connection failed: opening the file, or its migration.
pub(super) enum FirstOpen {
    Connect(sqlx::Error),
    Migrate(MigrateError),
}

/// A connection to the database with its schema up to date.
pub(super) async fn connect_and_migrate(
    options: &SqliteConnectOptions,
    migrator: &Migrator,
) -> Result<SqliteConnection, FirstOpen> {
    let started = Instant::now();
    loop {
        let failure = match SqliteConnection::connect_with(options).await {
            Ok(mut connection) => match migrator.run(&mut connection).await {
                Ok(()) => return Ok(connection),
                Err(e) => FirstOpen::Migrate(e),
            },
            Err(e) => FirstOpen::Connect(e),
        };
        if !raced(&failure) || started.elapsed() >= PATIENCE {
            return Err(failure);
        }
        tracing::debug!("another process is setting the database up; trying again");
        tokio::time::sleep(PAUSE).await;
    }
}

/// Whether the failure is another process's setup in progress rather than a real fault.
fn raced(failure: &FirstOpen) -> bool {
    match failure {
        FirstOpen::Connect(e) => busy(e),
        // What the other process created makes ours fail, whatever the message.
        FirstOpen::Migrate(MigrateError::ExecuteMigration(..)) => true,
        // The other process recorded the same migration first: its row is there.
        FirstOpen::Migrate(MigrateError::Execute(e)) => busy(e) || recorded_already(e),
        FirstOpen::Migrate(_) => false,
    }
}

/// SQLITE_BUSY (5) or SQLITE_LOCKED (6), plain or extended.
fn busy(e: &sqlx::Error) -> bool {
    let code = e
        .as_database_error()
        .and_then(|db| db.code())
        .and_then(|code| code.parse::<i32>().ok());
    matches!(code.map(|c| c & 0xff), Some(5 | 6))
}

/// A unique violation: the only one a migration's bookkeeping can meet is on the version that
/// another process recorded a moment before.
fn recorded_already(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|db| db.kind() == sqlx::error::ErrorKind::UniqueViolation)
}
