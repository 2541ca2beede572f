//! Retention through the CLI and `reprise serve`: ended workflows past the period disappear
//! with their steps, and a deleted id starts afresh.

use crate::common;
use crate::guests::FIB;

use std::process::Command;

use common::server::{Server, config, poll_until};
use common::{guest, reprise_bin};

#[test]
fn workflow_gc_deletes_ended_workflows_and_their_ids_start_afresh() {
    let dir = tempfile::tempdir().expect("temp dir");
    let reprise = |args: &[&str]| {
        Command::new(reprise_bin())
            .args(args)
            .env("REPRISE_DATABASE_URL", dir.path().join("gc.db"))
            .env("REPRISE_CACHE_DIR", dir.path().join("cache"))
            .output()
            .expect("run reprise")
    };
    let fib = guest(FIB).to_string_lossy().to_string();
    let first = reprise(&["run", &fib, "fib", "5", "--id", "reused"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );

    let kept = reprise(&["workflow", "gc", "--older-than", "1h"]);
    assert!(kept.status.success());
    assert!(String::from_utf8_lossy(&kept.stderr).contains("deleted 0 ended workflow(s)"));
    assert!(reprise(&["workflow", "get", "reused"]).status.success());

    let gc = reprise(&["workflow", "gc", "--older-than", "0s"]);
    assert!(
        gc.status.success(),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    assert!(String::from_utf8_lossy(&gc.stderr).contains("deleted 1 ended workflow(s)"));
    let gone = reprise(&["workflow", "get", "reused"]);
    assert!(!gone.status.success(), "the workflow is gone");
    let steps = reprise(&["workflow", "steps", "reused", "--json"]);
    assert!(!steps.status.success(), "no workflow, no steps");

    // The id runs again as a new workflow: its steps execute, none are replayed.
    let again = reprise(&["run", &fib, "fib", "6", "--id", "reused"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), "8");
    let steps = reprise(&["workflow", "steps", "reused", "--json"]);
    let steps: serde_json::Value = serde_json::from_slice(&steps.stdout).expect("json");
    assert_eq!(steps.as_array().map(Vec::len), Some(6));
}

#[tokio::test]
async fn a_served_retention_deletes_what_ended_longer_ago() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = config(dir.path(), "").replace(
        "executor_id = \"test-executor\"",
        "executor_id = \"test-executor\"\nretention = \"300ms\"",
    );
    let server = Server::start(dir.path(), &text);
    let client = server.client();
    let handle = client
        .start_with("fib", &3, &Default::default())
        .await
        .expect("start");
    let done = handle.status_at_end().await.expect("ended");
    assert_eq!(done.output, Some(serde_json::json!(2)));
    let url = format!("{}/workflows/{}", server.url, handle.id());
    let http = reqwest::Client::new();
    let status = poll_until(
        || async {
            http.get(&url)
                .bearer_auth("secret")
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        },
        |status| *status == 404,
    )
    .await;
    assert_eq!(status, 404, "deleted once past its retention");
    // The server logs the deletion just after it committed it: wait for the line, as the
    // 404 may come first.
    let said = "deleted ended workflows past their retention";
    let log = poll_until(|| async { server.log() }, |log| log.contains(said)).await;
    assert!(log.contains(said), "{log}");
}
