//! continue_as_new: a subscription renews, waits, and starts again as a new run under the same
//! id — on the newest version registered, with its old history kept as a finished run and no
//! longer replayed, and with its own idempotency keys — on SQLite and Postgres.

use crate::common;
use crate::guests::{ORDERS_V1, ORDERS_V2};

use std::process::Command;
use std::time::Duration;

use common::backend::{Backend, on_each_backend};
use common::server::poll_until;
use common::{Harness, options, reprise_bin};
use reprise_host::WorkflowRecord;
use reprise_host::runtime::StartRequest;
use serde_json::Value;

/// Waits until `sub-1` is in run `run`, waiting for its `next` message; returns its row.
async fn waiting_in_run(harness: &Harness, run: u32) -> WorkflowRecord {
    let store = &harness.store;
    let ready = || async move {
        let workflow = store.get_workflow("sub-1").await.ok().flatten()?;
        let steps = store.steps("sub-1").await.ok()?;
        let waiting = steps.iter().any(|s| s.name == "reprise.recv-deadline");
        (workflow.run == run && waiting).then_some(workflow)
    };
    let found = poll_until(ready, Option::is_some).await;
    found.unwrap_or_else(|| panic!("sub-1 never waited in run {run}"))
}

async fn a_workflow_continues_as_new_on_the_newest_version_with_its_runs_kept(backend: Backend) {
    let (harness, database) = backend.harness_and_database(options(3)).await;
    let v1 = harness.component(ORDERS_V1).await;
    let request = StartRequest {
        id: Some("sub-1".into()),
        ..StartRequest::new("subscription", "0")
    };
    harness.runtime.submit(&v1, request).await.expect("submit");
    waiting_in_run(&harness, 0).await;
    // A new version arrives while run 0 waits: the next run starts on it.
    let v2 = harness.component(ORDERS_V2).await;
    let mailbox = harness.runtime.mailbox();
    mailbox
        .send_message("sub-1", "next", "\"go\"", None)
        .await
        .expect("send");
    let second = waiting_in_run(&harness, 1).await;
    assert_eq!(
        (second.input.as_str(), second.app_version.as_str()),
        ("1", v2.digest.as_str())
    );
    let names: Vec<String> = harness
        .steps("sub-1")
        .await
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        names,
        ["renew", "reprise.recv-deadline"],
        "only this run's history is replayed"
    );
    for _ in 0..2 {
        mailbox
            .send_message("sub-1", "next", "\"go\"", None)
            .await
            .expect("send");
        if harness
            .store
            .get_workflow("sub-1")
            .await
            .expect("get")
            .is_some_and(|w| w.run == 1)
        {
            waiting_in_run(&harness, 2).await;
        }
    }
    let ended = harness
        .runtime
        .wait("sub-1", Some(Duration::from_secs(30)))
        .await
        .expect("wait")
        .expect("sub-1 ended");
    // Run 2's step had its own idempotency key: its run and position.
    assert_eq!(
        ended.output.as_deref(),
        Some("\"renewed 2 (v2) key sub-1/2.0\""),
        "{ended:?}"
    );
    let runs = harness.store.runs("sub-1").await.expect("runs");
    let summary: Vec<(u32, &str, &str, &str)> = runs
        .iter()
        .map(|r| {
            (
                r.run,
                r.app_version.as_str(),
                r.input.as_str(),
                r.next_input.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (0, v1.digest.as_str(), "0", "1"),
            (1, v2.digest.as_str(), "1", "2")
        ]
    );
    let first_renewal = runs[0].steps[0].output.clone().unwrap_or_default();
    assert_eq!(
        first_renewal, "\"renewed 0 key sub-1/0\"",
        "run 0 ran on v1"
    );
    // The CLI lists them.
    let out = Command::new(reprise_bin())
        .args([
            "workflow",
            "runs",
            "sub-1",
            "--json",
            "--database",
            &database,
        ])
        .output()
        .expect("reprise");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    assert_eq!(listed[1]["steps"][0]["name"], "renew");
}

on_each_backend!(a_workflow_continues_as_new_on_the_newest_version_with_its_runs_kept);
