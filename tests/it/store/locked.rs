//! Another process holds the SQLite file's write lock past the busy timeout while a served
//! workflow runs: its checkpoint fails with "database is locked", and the host drives it again
//! from its last commit once the lock is gone — the workflow ends `SUCCESS` without a
//! restart, never left `PENDING` and idle.

use crate::common;

use std::time::Duration;

use common::server::{Server, config};
use reprise_client::StartOptions;
use serde_json::json;
use sqlx::Connection;

#[tokio::test]
async fn a_workflow_survives_a_lock_held_past_the_busy_timeout() {
    let dir = tempfile::tempdir().expect("dir");
    let server = Server::start(dir.path(), &config(dir.path(), ""));
    let client = server.client();
    let handle = client
        .start_with("fib_slow", &json!([8, 100]), &StartOptions::default())
        .await
        .expect("start");

    // Once the workflow is under way, another process takes the write lock and keeps it.
    let db = format!("sqlite://{}", dir.path().join("serve.db").display());
    let mut other = sqlx::SqliteConnection::connect(&db).await.expect("connect");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .expect("take the write lock");
    let said = server.wait_for_log(
        &["database is locked", "workflow_id="],
        Duration::from_secs(30),
    );
    assert!(
        said.contains("the workflow is driven again from its last commit"),
        "{said}"
    );
    sqlx::query("ROLLBACK")
        .execute(&mut other)
        .await
        .expect("release the lock");

    let ended = tokio::time::timeout(Duration::from_secs(60), handle.status_at_end())
        .await
        .expect("it ends without a restart")
        .expect("ended");
    assert_eq!(ended.status.as_str(), "SUCCESS", "{ended:?}");
    assert_eq!(ended.output, Some(json!(21)));
}
