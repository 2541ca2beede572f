//! Workflow deadlines and delayed starts: a workflow started with a timeout ends CANCELLED
//! with a reason naming its deadline, whether it is parked in a wait, blocked in a step, or
//! its deadline passed while no host ran; a child inherits its parent's deadline; a delayed
//! start stays ENQUEUED until its time.

use crate::common;
use crate::guests::{CHAOS, FIB};

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Harness, guest, options, reprise_bin};
use reprise_host::WorkflowStatus;
use reprise_host::runtime::StartRequest;
use reprise_host::store::{WorkflowFilter, now_ms};
use tokio_util::sync::CancellationToken;

async fn start(harness: &Harness, id: &str, workflow: &str, input: &str, timeout_ms: u64) {
    let component = harness.component(CHAOS).await;
    let request = StartRequest {
        id: Some(id.into()),
        timeout: Some(Duration::from_millis(timeout_ms)),
        ..StartRequest::new(workflow, input)
    };
    harness
        .runtime
        .submit(&component, request)
        .await
        .expect("submit");
}

/// `reprise` on the database in `dir`, as a separate process.
fn reprise_on(dir: &Path) -> Command {
    let mut command = Command::new(reprise_bin());
    command
        .env("REPRISE_DATABASE_URL", dir.join("reprise.db"))
        .env("REPRISE_DURABILITY", "process")
        .env("REPRISE_CACHE_DIR", dir.join("cache"));
    command
}

/// The recorded steps of `id`, as `workflow steps --json` shows them.
fn steps_of(dir: &Path, id: &str) -> Vec<serde_json::Value> {
    let steps = reprise_on(dir)
        .args(["workflow", "steps", id, "--json"])
        .output()
        .expect("steps");
    serde_json::from_slice(&steps.stdout).unwrap_or_default()
}

async fn ended(harness: &Harness, id: &str) -> reprise_host::WorkflowRecord {
    harness
        .runtime
        .wait(id, Some(Duration::from_secs(30)))
        .await
        .expect("wait")
        .unwrap_or_else(|| panic!("{id} did not end"))
}

fn assert_expired(record: &reprise_host::WorkflowRecord) {
    assert_eq!(record.status, WorkflowStatus::Cancelled, "{record:?}");
    let reason = record.error.as_deref().unwrap_or_default();
    assert!(reason.contains("deadline exceeded"), "{reason}");
}

#[tokio::test]
async fn a_parked_workflow_is_cancelled_when_its_timeout_passes() {
    let harness = Harness::new(options(3)).await;
    let began = Instant::now();
    start(&harness, "sleeper", "sleepy", "600000", 400).await;
    let record = ended(&harness, "sleeper").await;
    assert_expired(&record);
    assert!(
        record
            .error
            .unwrap_or_default()
            .contains("timeout of 400 ms")
    );
    assert!(
        began.elapsed() < Duration::from_secs(10),
        "{:?}",
        began.elapsed()
    );
    let deadline = record.deadline_at.expect("deadline stored");
    let started = record.started_at.expect("started");
    assert_eq!(deadline - started, 400);
}

#[tokio::test]
async fn a_workflow_blocked_in_a_step_is_interrupted_at_its_deadline() {
    let harness = Harness::new(options(3)).await;
    let began = Instant::now();
    start(&harness, "blocked", "blocked", "600000", 300).await;
    let record = ended(&harness, "blocked").await;
    assert_expired(&record);
    assert!(began.elapsed() < Duration::from_secs(10));
    let steps = harness.steps("blocked").await;
    assert!(
        steps.is_empty(),
        "the blocked step recorded nothing: {steps:?}"
    );
}

#[tokio::test]
async fn a_child_inherits_its_parents_deadline() {
    let harness = Harness::new(options(3)).await;
    start(&harness, "parent", "sleepy_parent", "600000", 500).await;
    let parent = ended(&harness, "parent").await;
    assert_expired(&parent);
    let children = harness
        .store
        .list_workflows(&WorkflowFilter::default())
        .await
        .expect("list");
    let child = children
        .into_iter()
        .find(|w| w.parent_workflow_id.as_deref() == Some("parent"))
        .expect("the child");
    assert_eq!(child.deadline_at, parent.deadline_at, "inherited");
    let child = ended(&harness, &child.id).await;
    assert_expired(&child);
    assert!(
        child.error.unwrap_or_default().contains("inherited"),
        "the reason says where the deadline came from"
    );
}

#[tokio::test]
async fn a_deadline_that_passed_while_no_host_ran_is_enforced_at_recovery() {
    let dir = tempfile::tempdir().expect("dir");
    let cli = || reprise_on(dir.path());
    let mut run = cli()
        .arg("run")
        .arg(guest(CHAOS))
        // Long enough to see its sleep recorded before the deadline, however slow the machine.
        .args(["sleepy", "600000", "--id", "down", "--timeout", "4s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run");
    // Wait until its sleep is recorded, then kill the only host.
    let opened = Instant::now();
    loop {
        let steps = cli()
            .args(["workflow", "steps", "down", "--json"])
            .output()
            .expect("steps");
        if String::from_utf8_lossy(&steps.stdout).contains("reprise.sleep") {
            break;
        }
        assert!(opened.elapsed() < Duration::from_secs(20), "never slept");
        std::thread::sleep(Duration::from_millis(50));
    }
    run.kill().expect("kill");
    run.wait().expect("reap");
    let get = || {
        let got = cli()
            .args(["workflow", "get", "down", "--json"])
            .output()
            .expect("get");
        serde_json::from_slice::<serde_json::Value>(&got.stdout).expect("json")
    };
    let before = get();
    assert_eq!(
        before["status"], "PENDING",
        "killed while it slept: {before}"
    );
    // No host runs while the stored deadline passes.
    let deadline = before["deadline_at"].as_i64().expect("a stored deadline");
    let until = deadline.saturating_sub(now_ms()).max(0) + 50;
    std::thread::sleep(Duration::from_millis(until.unsigned_abs()));

    let recovered = cli().arg("recover").output().expect("recover");
    // Exit 1: the one workflow recovered did not succeed.
    assert_eq!(recovered.status.code(), Some(1), "{recovered:?}");
    let view = get();
    assert_eq!(view["status"], "CANCELLED", "{view}");
    let error = view["error"].as_str().unwrap_or_default();
    assert!(error.contains("deadline exceeded"), "{error}");
}

#[tokio::test]
async fn a_delayed_start_stays_enqueued_until_its_time() {
    let harness = Harness::new(options(3)).await;
    let stop = CancellationToken::new();
    let starter = harness
        .runtime
        .dispatch()
        .spawn_delayed_starts(stop.clone());
    let component = harness.component(CHAOS).await;
    let not_before = now_ms() + 600;
    let request = StartRequest {
        id: Some("later".into()),
        not_before: Some(not_before),
        ..StartRequest::new("echo", "\"hi\"")
    };
    let inserted = harness
        .runtime
        .submit(&component, request)
        .await
        .expect("submit");
    assert_eq!(inserted.record.status, WorkflowStatus::Enqueued);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waiting = harness.store.get_workflow("later").await.expect("get");
    assert_eq!(waiting.map(|w| w.status), Some(WorkflowStatus::Enqueued));
    let record = ended(&harness, "later").await;
    assert_eq!(record.status, WorkflowStatus::Success);
    assert!(record.started_at.expect("started") >= not_before);
    stop.cancel();
    starter.await.expect("starter");
}

#[test]
fn run_with_a_delay_waits_and_then_runs() {
    let dir = tempfile::tempdir().expect("dir");
    let began = Instant::now();
    let out = Command::new(reprise_bin())
        .env("REPRISE_DATABASE_URL", dir.path().join("reprise.db"))
        .env("REPRISE_CACHE_DIR", dir.path().join("cache"))
        .arg("run")
        .arg(guest(CHAOS))
        .args(["echo", "\"hi\"", "--delay", "700ms", "--json"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    assert!(began.elapsed() >= Duration::from_millis(700));
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let waited = view["started_at"].as_i64().expect("started")
        - view["created_at"].as_i64().expect("created");
    assert!(waited >= 700, "started {waited} ms after its creation");
}

#[tokio::test]
async fn a_recv_timeout_is_durable_after_a_recovery_only_the_rest_is_waited() {
    let dir = tempfile::tempdir().expect("dir");
    const TIMEOUT_MS: i64 = 5_000;
    let mut run = reprise_on(dir.path())
        .arg("run")
        .arg(guest(FIB))
        .args(["wait_one", &TIMEOUT_MS.to_string(), "--id", "waiting"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run");
    // Its recv's deadline is recorded before it waits.
    let opened = Instant::now();
    let deadline = loop {
        let steps = steps_of(dir.path(), "waiting");
        let recorded = steps.iter().find(|s| s["name"] == "reprise.recv-deadline");
        if let Some(deadline) = recorded.and_then(|s| s["output"].as_i64()) {
            break deadline;
        }
        assert!(
            opened.elapsed() < Duration::from_secs(20),
            "the recv never began"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    run.kill().expect("kill");
    run.wait().expect("reap");

    // Recovered 2 s before the deadline: it waits those 2 s, not a new 5.
    let recover_at = deadline - 2_000;
    std::thread::sleep(Duration::from_millis(
        recover_at.saturating_sub(now_ms()).max(0).unsigned_abs(),
    ));
    let recovered = reprise_on(dir.path())
        .arg("recover")
        .output()
        .expect("recover");
    assert!(recovered.status.success(), "{recovered:?}");
    let steps = steps_of(dir.path(), "waiting");
    let recv = steps
        .iter()
        .find(|s| s["name"] == "reprise.recv:in")
        .expect("the recv is recorded");
    assert_eq!(
        recv["output"],
        serde_json::json!({"timed_out": true}),
        "{steps:?}"
    );
    let finished = recv["completed_at"].as_i64().expect("completed_at");
    assert!(finished >= deadline, "not before the recorded deadline");
    assert!(
        finished < deadline + TIMEOUT_MS - 1_000,
        "it timed out {} ms after its first deadline: the whole timeout was waited again",
        finished - deadline
    );
}
