//! A hand-edited or corrupted row is reported as corrupt, never read as a default: a workflow
//! whose stored instance config does not parse must not run with settings it did not start
//! with.

use crate::common;
use crate::guests::FIB;

use common::{Harness, options};
use reprise_host::WorkflowStatus;
use sqlx::Connection;

#[tokio::test]
async fn a_corrupt_config_row_stops_the_workflow_with_an_error_naming_it() {
    let harness = Harness::new(options(3)).await;
    let component = harness.component(FIB).await;
    let inserted = harness
        .runtime
        .start(&component, "fib", "5", Some("bad-config".into()))
        .await
        .expect("start");
    assert!(inserted.created);

    let url = format!("sqlite://{}", harness.db_path().display());
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    sqlx::query("UPDATE workflow_status SET config = '{not json' WHERE workflow_id = 'bad-config'")
        .execute(&mut conn)
        .await
        .expect("corrupt the row");
    conn.close().await.expect("close");

    let err = harness
        .runtime
        .drive("bad-config")
        .await
        .expect_err("a corrupt config must not run as {}");
    let message = err.to_string();
    assert!(
        message.contains("corrupt row in workflow_status"),
        "{message}"
    );
    assert!(
        message.contains("workflow bad-config: config is not a JSON object"),
        "{message}"
    );

    let record = harness
        .store
        .get_workflow("bad-config")
        .await
        .expect("read")
        .expect("still there");
    assert_eq!(record.status, WorkflowStatus::Pending);
    assert!(harness.steps("bad-config").await.is_empty(), "a step ran");
}
