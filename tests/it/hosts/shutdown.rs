//! Stopping `reprise serve` under load loses nothing: after SIGTERM (graceful drain) or SIGKILL
//! (none), a restart finishes every workflow exactly once, with each position recorded once.

use crate::common;

use common::server::{Server, config, poll_until};
use reprise_client::WorkflowStatus;
use reprise_host::store::roles::*;
use reprise_host::{Durability, SqliteStore};
use serde_json::{Value, json};

const WORKFLOWS: usize = 50;
const STEPS: u64 = 6;

async fn stop_under_load_then_restart(signal: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    // A short grace period, so SIGTERM leaves some workflows for the next start.
    let text = config(dir.path(), "[queues.load]\nworker_concurrency = 16\n")
        .replace("grace_period = \"10s\"", "grace_period = \"300ms\"");
    let mut first = Server::start(dir.path(), &text);
    let client = first.client();
    let mut ids = Vec::new();
    for _ in 0..WORKFLOWS {
        let handle = client
            .enqueue("load", "fib_slow", &json!([STEPS, 100]))
            .await
            .expect("enqueue");
        ids.push(handle.id().to_string());
    }
    let in_flight = poll_until(|| first.pending_in("load"), |n| *n >= 8).await;
    assert!(
        in_flight >= 8,
        "workflows were in flight when the signal came"
    );
    let code = first.signal_and_wait(signal);
    if signal == "TERM" {
        assert_eq!(code, Some(0), "graceful shutdown exits 0:\n{}", first.log());
    }
    drop(first);
    let left = SqliteStore::open(
        &dir.path().join("serve.db").to_string_lossy(),
        Durability::Process,
    )
    .await
    .expect("open")
    .pending_workflows("test-executor")
    .await
    .expect("pending")
    .len();

    let second = Server::start(dir.path(), &text);
    // The start says how many it recovered, queued ones included.
    let serving = second.wait_for_log(&["serving"], std::time::Duration::from_secs(10));
    assert!(
        serving.contains(&format!("recovered={left}")),
        "{left} left: {serving}"
    );
    let client = second.client();
    for id in &ids {
        let status = client
            .handle(id.clone())
            .status_at_end()
            .await
            .expect("end");
        assert_eq!(status.status, WorkflowStatus::Success, "{status:?}");
        assert_eq!(status.output, Some(json!(8)), "fib(6)");
        assert!(status.executions <= 2, "at most one recovery: {status:?}");
        let steps = second.steps(id).await;
        let positions: Vec<u64> = steps
            .iter()
            .filter_map(|s| s["function_id"].as_u64())
            .collect();
        assert_eq!(
            positions,
            (0..STEPS * 2).collect::<Vec<_>>(),
            "each position recorded exactly once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_and_a_restart_finishes_everything_once() {
    stop_under_load_then_restart("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_nothing() {
    stop_under_load_then_restart("KILL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovered_workflow_does_not_block_a_concurrency_one_queue() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = config(dir.path(), "[queues.single]\nconcurrency = 1\n");
    let mut first = Server::start(dir.path(), &text);
    let client = first.client();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let handle = client
            .enqueue("single", "fib_slow", &json!([4, 100]))
            .await
            .expect("enqueue");
        ids.push(handle.id().to_string());
    }
    let running = poll_until(|| first.pending_in("single"), |n| *n == 1).await;
    assert_eq!(running, 1, "one workflow holds the queue's only slot");
    first.signal_and_wait("KILL");
    drop(first);

    // The killed workflow is PENDING and counts against the limit until it is recovered and
    // finishes; recovery must run it rather than wait for the queue, or nothing would move.
    let second = Server::start(dir.path(), &text);
    let client = second.client();
    let mut intervals = Vec::new();
    for id in &ids {
        let status = client
            .handle(id.clone())
            .status_at_end()
            .await
            .expect("end");
        assert_eq!(status.status, WorkflowStatus::Success, "{status:?}");
        intervals.push((status.started_at.expect("started"), status.updated_at));
    }
    intervals.sort();
    for pair in intervals.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "two ran at once on a concurrency-1 queue: {pair:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_instance_recovers_its_workflows_with_its_own_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = config(dir.path(), "");
    let mut first = Server::start(dir.path(), &text);
    let client = first.client();
    let mut started = Vec::new();
    for instance in ["alpha", "beta"] {
        let options = reprise_client::StartOptions {
            instance: Some(instance.into()),
            ..reprise_client::StartOptions::default()
        };
        let handle = client
            .start_with("config_after_sleep", &1_500, &options)
            .await
            .expect("start");
        started.push((instance, handle.id().to_string()));
    }
    // Kill the host once both have recorded their first step and begun their durable sleep.
    for (_, id) in &started {
        let recorded = poll_until(|| first.steps(id), |steps| steps.len() >= 2).await;
        assert_eq!(recorded.len(), 2, "instance step and sleep recorded");
    }
    first.signal_and_wait("KILL");
    drop(first);

    let second = Server::start(dir.path(), &text);
    let client = second.client();
    for (instance, id) in &started {
        let seen: Value = client
            .handle(id.clone())
            .result()
            .await
            .expect("recovered result");
        assert_eq!(
            seen["topic"], *instance,
            "recovered with its own instance's config: {seen}"
        );
        assert_eq!(seen["@instance"], *instance);
        assert_eq!(
            seen["@recovery"], "1",
            "it was recovered, not restarted: {seen}"
        );
    }
}
