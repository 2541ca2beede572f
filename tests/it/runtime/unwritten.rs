//! A new workflow run at once runs its code before its row is written: an empty one costs one
//! commit, its row is exactly the one it ran on, and nothing leaves the guest before the row
//! exists.

use std::sync::{Arc, Mutex};

use crate::common::Harness;
use reprise_host::grants::Grants;
use reprise_host::runtime::InstanceOptions;
use reprise_host::store::Store;
use reprise_host::{Durability, RuntimeOptions, SqliteStore, WorkflowRecord, WorkflowStatus};

const FIB: &str = "fib";

async fn on_sqlite(options: RuntimeOptions) -> (Harness, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("reprise.db");
    let sqlite = Arc::new(
        SqliteStore::open(&path.to_string_lossy(), Durability::Synced)
            .await
            .expect("open sqlite"),
    );
    let store: Arc<dyn Store> = sqlite.clone();
    let mut harness = Harness::with_store(store, options).await;
    // The store lives in the harness's temp dir's stead: keep the file's dir alive with it.
    harness.dir = dir;
    (harness, sqlite)
}

/// Runs `workflow` of the fib guest to its end on a fresh SQLite file at `synced`: its final
/// row and the commits the run made (the component's registration not counted).
async fn run_counting(workflow: &str, input: &str) -> (Harness, WorkflowRecord, u64) {
    let (harness, sqlite) = on_sqlite(RuntimeOptions::default()).await;
    let component = harness.component(FIB).await;
    let before = sqlite.commits();
    let record = harness
        .runtime
        .run(&component, workflow, input, None)
        .await
        .expect("run");
    assert_eq!(record.status, WorkflowStatus::Success, "{:?}", record.error);
    let commits = sqlite.commits() - before;
    (harness, record, commits)
}

#[tokio::test]
async fn an_empty_workflow_run_commits_once() {
    let (harness, record, commits) = run_counting("empty", "null").await;
    assert_eq!(commits, 1, "an empty workflow is written once, ended");
    let stored = harness.store.get_workflow(&record.id).await.unwrap();
    assert_eq!(stored.as_ref(), Some(&record));
    assert_eq!(
        (record.executions, record.started_at),
        (1, Some(record.created_at))
    );
    assert!(harness.steps(&record.id).await.is_empty());
}

#[tokio::test]
async fn a_workflow_with_steps_is_written_before_its_first_step_and_ends_as_before() {
    let (harness, record, commits) = run_counting("count", "3").await;
    // The row, three steps, the ending: nothing more, nothing less.
    assert_eq!(commits, 5);
    let steps = harness.steps(&record.id).await;
    assert_eq!(steps.len(), 3);
    assert!(
        steps
            .iter()
            .all(|s| s.name == "tick" && s.committed_epoch == Some(record.epoch)),
        "{steps:?}"
    );
    assert_eq!(record.started_at, Some(record.created_at));
}

/// A loopback server whose every GET counts, at that moment, the PENDING workflows the store
/// holds.
async fn counting_server(store: Arc<dyn Store>) -> (String, Arc<Mutex<Vec<u64>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let counts = seen.clone();
    let app = axum::Router::new().route(
        "/ping",
        axum::routing::get(move || {
            let (store, counts) = (store.clone(), counts.clone());
            async move {
                let by_status = store.count_by_status().await.expect("count");
                let pending = by_status
                    .iter()
                    .find(|(status, _)| *status == WorkflowStatus::Pending)
                    .map_or(0, |(_, n)| *n);
                counts.lock().expect("lock").push(pending);
                "pong"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/ping"), seen)
}

#[tokio::test]
async fn nothing_leaves_the_guest_before_its_workflows_row_exists() {
    let grants = Grants {
        http: vec!["127.0.0.1:*".parse().unwrap()],
        ..Grants::default()
    };
    let instance = InstanceOptions {
        grants: Arc::new(grants),
        ..InstanceOptions::default()
    };
    let (harness, _) = on_sqlite(RuntimeOptions::single("local", instance)).await;
    let (url, seen) = counting_server(harness.store.clone()).await;
    let component = harness.component(FIB).await;
    let input = serde_json::to_string(&(url.as_str(), 2)).unwrap();
    let record = harness
        .runtime
        .run(&component, "http_gets", &input, None)
        .await
        .expect("run");
    assert_eq!(record.status, WorkflowStatus::Success, "{:?}", record.error);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![1, 1],
        "each GET of the step found the workflow's row, PENDING"
    );
}
