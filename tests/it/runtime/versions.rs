//! Code that changes under running workflows: `orders-v1` workflows wait in flight, and
//! `orders-v2` (a patched change and three unpatched ones) is checked against them with
//! `reprise upgrade-check`, replayed with `reprise replay`, on SQLite and on Postgres. Nothing
//! is executed or written by either.

use crate::common;
use crate::guests::{ORDERS_V1, ORDERS_V2};

use std::process::Command;
use std::sync::Arc;

use common::backend::{Backend, on_each_backend};
use common::server::poll_until;
use common::{Harness, guest, options, reprise_bin};
use reprise_host::runtime::{InstanceOptions, StartRequest, UpgradePolicy};
use reprise_host::store::Store;
use reprise_host::{LoadedComponent, RuntimeOptions};
use serde_json::Value;

/// Every step row of the database, for "nothing was written".
async fn all_steps(store: &Arc<dyn Store>, ids: &[&str]) -> Vec<reprise_host::store::StepRecord> {
    let mut all = Vec::new();
    for id in ids {
        all.extend(store.steps(id).await.expect("steps"));
    }
    all
}

/// v1 workflows, each left waiting: `order` o-1 and o-13 in `recv("ship")`, `refund` r-1 in
/// `recv("approve")`, `audit` a-1 after two notes, `batch` b-1 on its child b-1-0 (an order).
async fn in_flight(harness: &Harness) {
    let v1 = harness.component(ORDERS_V1).await;
    for (id, workflow, input) in [
        ("o-1", "order", "1"),
        ("o-13", "order", "13"),
        ("r-1", "refund", "1"),
        ("a-1", "audit", "1"),
        ("b-1", "batch", "1"),
    ] {
        let request = StartRequest {
            id: Some(id.into()),
            ..StartRequest::new(workflow, input)
        };
        harness.runtime.submit(&v1, request).await.expect("submit");
    }
    // Each parks in its wait: a recv's deadline, or the child's start, is its last record.
    for (id, last) in [
        ("o-1", "reprise.recv-deadline"),
        ("o-13", "reprise.recv-deadline"),
        ("r-1", "reprise.recv-deadline"),
        ("a-1", "reprise.recv-deadline"),
        ("b-1", "reprise.start-child:order"),
        ("b-1-0", "reprise.recv-deadline"),
    ] {
        let steps = poll_until(
            || harness.store.steps(id),
            |steps| {
                steps
                    .as_ref()
                    .is_ok_and(|s| s.last().is_some_and(|s| s.name == last))
            },
        )
        .await
        .expect("steps");
        assert_eq!(steps.last().map(|s| s.name.as_str()), Some(last), "{id}");
    }
}

fn reprise(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(reprise_bin())
        .args(args)
        .output()
        .expect("run reprise");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const IDS: [&str; 6] = ["o-1", "o-13", "r-1", "a-1", "b-1", "b-1-0"];

async fn upgrade_check_reports_each_workflow_in_flight(backend: Backend) {
    let (harness, database) = backend.harness_and_database(options(3)).await;
    in_flight(&harness).await;
    let before = all_steps(&harness.store, &IDS).await;
    let v2 = guest(ORDERS_V2).display().to_string();
    let (code, stdout, stderr) =
        reprise(&["upgrade-check", &v2, "--database", &database, "--json"]);
    assert_eq!(code, Some(1), "some diverge: exit 1\n{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("json report");
    assert_eq!(
        (report["checked"].as_u64(), report["clean"].as_u64()),
        (Some(6), Some(3))
    );
    let verdict = |id: &str| {
        report["workflows"]
            .as_array()
            .expect("workflows")
            .iter()
            .find(|w| w["id"] == id)
            .unwrap_or_else(|| panic!("{id} not checked: {report}"))
            .clone()
    };
    // Patched: the orders replay v1's histories and would next receive `ship`.
    for id in ["o-1", "o-13", "b-1-0"] {
        let v = verdict(id);
        assert_eq!(v["verdict"], "clean", "{v}");
        assert_eq!(v["next"]["name"], "reprise.recv:ship", "{v}");
        assert_eq!(v["next"]["position"], 2, "{v}");
    }
    let refund = verdict("r-1");
    assert_eq!(refund["verdict"], "diverged", "{refund}");
    assert_eq!(refund["position"], 0);
    assert_eq!(
        (refund["recorded"].as_str(), refund["requested"].as_str()),
        (Some("\"lookup\""), Some("\"find\""))
    );
    let audit = verdict("a-1");
    assert_eq!(audit["verdict"], "unconsumed", "{audit}");
    assert_eq!(
        (audit["position"].as_u64(), audit["left"].as_u64()),
        (Some(1), Some(2))
    );
    // The same child, started with another input: the arguments' digests differ.
    let batch = verdict("b-1");
    assert_eq!(batch["verdict"], "diverged", "{batch}");
    assert!(
        batch["message"]
            .as_str()
            .is_some_and(|m| m.contains("must be the same on replay")),
        "{batch}"
    );
    // Grouped, problems first, with examples.
    let first = &report["groups"][0];
    assert_ne!(first["verdict"], "clean", "{report}");
    let clean_orders = report["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["verdict"] == "clean")
        .expect("a clean group");
    assert_eq!(clean_orders["count"], 3, "{clean_orders}");
    // The text form says the same to a person.
    let (code, text, _) = reprise(&["upgrade-check", &v2, "--database", &database]);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("6 workflow(s) in flight checked") && text.contains("3 clean, 3 not"),
        "{text}"
    );
    assert!(
        text.contains("DIVERGED") && text.contains("UNCONSUMED") && text.contains("r-1"),
        "{text}"
    );
    // Only the refunds: all diverge. v1 against itself: all clean, exit 0.
    let v1 = guest(ORDERS_V1).display().to_string();
    let (code, text, stderr) = reprise(&["upgrade-check", &v1, "--database", &database]);
    assert_eq!(code, Some(0), "{text}{stderr}");
    assert!(text.contains("6 clean, 0 not"), "{text}");
    assert_eq!(
        all_steps(&harness.store, &IDS).await,
        before,
        "nothing was written"
    );
}

async fn replay_prints_the_timeline_and_where_other_code_parts(backend: Backend) {
    let (harness, database) = backend.harness_and_database(options(3)).await;
    in_flight(&harness).await;
    let before = all_steps(&harness.store, &IDS).await;
    let (code, text, stderr) = reprise(&["replay", "o-1", "--database", &database]);
    assert_eq!(code, Some(0), "{text}{stderr}");
    assert!(text.contains("its own version"), "{text}");
    assert!(
        text.contains("reserve") && text.contains("recv-deadline"),
        "{text}"
    );
    assert!(
        text.contains("INFO order 1 reserved, waiting for ship (replayed)"),
        "{text}"
    );
    assert!(
        text.contains("CLEAN: next: reprise.recv:ship at position 2"),
        "{text}"
    );
    // On other code, the renamed step is where it parts.
    let v2 = guest(ORDERS_V2).display().to_string();
    let (code, text, _) = reprise(&["replay", "r-1", "--to", &v2, "--database", &database]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("other code") && text.contains("DIVERGED: position 0"),
        "{text}"
    );
    // --until stops earlier; --json says the same to a program.
    let (code, json, _) = reprise(&[
        "replay",
        "o-1",
        "--until",
        "1",
        "--json",
        "--database",
        &database,
    ]);
    assert_eq!(code, Some(0));
    let replayed: Value = serde_json::from_str(&json).expect("json");
    assert_eq!(
        replayed["timeline"].as_array().map(Vec::len),
        Some(1),
        "{replayed}"
    );
    assert_eq!(
        replayed["result"]["next"]["name"], "reprise.recv-deadline",
        "{replayed}"
    );
    assert_eq!(replayed["logs"][0]["replayed"], true, "{replayed}");
    // An unknown id and a missing database are errors naming them.
    let (code, _, stderr) = reprise(&["replay", "nope", "--database", &database]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("nope"), "{stderr}");
    assert_eq!(
        all_steps(&harness.store, &IDS).await,
        before,
        "nothing was written"
    );
}

async fn a_move_to_new_code_happens_only_when_clean_and_the_workflow_goes_on_on_it(
    backend: Backend,
) {
    let (harness, database) = backend.harness_and_database(options(3)).await;
    in_flight(&harness).await;
    let v2 = guest(ORDERS_V2).display().to_string();
    let v1_digest = harness.component(ORDERS_V1).await.digest.clone();
    // Diverging: refused, and nothing changes.
    let refund_before = harness.store.steps("r-1").await.expect("steps");
    let (code, text, stderr) = reprise(&[
        "workflow",
        "upgrade",
        "r-1",
        "--to",
        &v2,
        "--database",
        &database,
    ]);
    assert_eq!(code, Some(1), "{text}{stderr}");
    assert!(
        text.contains("r-1: not moved") && text.contains("diverged"),
        "{text}"
    );
    let refund = harness
        .store
        .get_workflow("r-1")
        .await
        .expect("get")
        .expect("r-1");
    assert_eq!(refund.app_version, v1_digest);
    assert_eq!(
        harness.store.steps("r-1").await.expect("steps"),
        refund_before
    );
    // A dry run of every v1 workflow: the orders would move, the rest would not.
    let (code, text, _) = reprise(&[
        "workflow",
        "upgrade",
        "--all",
        "--from",
        &v1_digest[..12],
        "--to",
        &v2,
        "--dry-run",
        "--database",
        &database,
    ]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("o-13: would move") && text.contains("3 of 6 workflow(s) would move"),
        "{text}"
    );
    // Clean: moved, with the move recorded where the new code takes over.
    for id in ["o-1", "o-13"] {
        let (code, text, stderr) = reprise(&[
            "workflow",
            "upgrade",
            id,
            "--to",
            &v2,
            "--database",
            &database,
        ]);
        assert_eq!(code, Some(0), "{text}{stderr}");
        assert!(text.contains(&format!("{id}: moved")), "{text}");
    }
    let order = harness
        .store
        .get_workflow("o-13")
        .await
        .expect("get")
        .expect("o-13");
    assert_ne!(order.app_version, v1_digest);
    let steps = harness.store.steps("o-13").await.expect("steps");
    let last = steps.last().expect("a record of the move");
    assert_eq!(
        (last.function_id, last.name.as_str()),
        (2, "reprise.upgrade")
    );
    assert!(
        last.output
            .as_deref()
            .is_some_and(|o| o.contains(&v1_digest)),
        "{last:?}"
    );
    // The runtime that parked it goes on on the new code once its message comes: the fraud
    // check is not run (the order had passed that point), the new charge is.
    harness
        .runtime
        .mailbox()
        .send_message("o-13", "ship", "\"now\"", None)
        .await
        .expect("send");
    let ended = harness
        .runtime
        .wait("o-13", Some(std::time::Duration::from_secs(30)))
        .await
        .expect("wait")
        .expect("o-13 ended");
    assert_eq!(
        ended.output.as_deref(),
        Some("\"charged 13 (checked)\""),
        "{ended:?}"
    );
    let names: Vec<String> = harness
        .steps("o-13")
        .await
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert!(!names.iter().any(|n| n == "fraud_check"), "{names:?}");
    // A new v2 order takes the patched branch; `patches` counts both kinds in flight on v2.
    let v2_component = harness.component(ORDERS_V2).await;
    let request = StartRequest {
        id: Some("o-2".into()),
        ..StartRequest::new("order", "2")
    };
    harness
        .runtime
        .submit(&v2_component, request)
        .await
        .expect("submit");
    common::waiting_in_recv(&*harness.store, "o-2")
        .await
        .expect("steps");
    let (code, json, stderr) = reprise(&["patches", "--database", &database, "--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let uses: Value = serde_json::from_str(&json).expect("json");
    let fraud = uses
        .as_array()
        .expect("uses")
        .iter()
        .find(|u| u["patch"] == "fraud-check" && u["app_version"] == v2_component.digest.as_str())
        .unwrap_or_else(|| panic!("{uses}"));
    assert_eq!(
        (fraud["recorded"].as_u64(), fraud["old_branch"].as_u64()),
        (Some(1), Some(1)),
        "{fraud}"
    );
}

on_each_backend!(
    upgrade_check_reports_each_workflow_in_flight,
    replay_prints_the_timeline_and_where_other_code_parts,
    a_move_to_new_code_happens_only_when_clean_and_the_workflow_goes_on_on_it,
);

#[tokio::test]
async fn replay_of_a_missing_database_creates_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("typo.db");
    let (code, _, stderr) = reprise(&["replay", "x", "--database", &db.display().to_string()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no database at"), "{stderr}");
    assert!(!db.exists(), "no file was created");
}

/// Starts `workflow(input)` of `component` as `id` and waits until it waits for a message.
async fn parked(
    harness: &Harness,
    component: &Arc<LoadedComponent>,
    id: &str,
    workflow: &str,
    input: &str,
) {
    let request = StartRequest {
        id: Some(id.into()),
        ..StartRequest::new(workflow, input)
    };
    harness
        .runtime
        .submit(component, request)
        .await
        .expect("submit");
    let steps = poll_until(
        || harness.store.steps(id),
        |s| {
            s.as_ref()
                .is_ok_and(|s| s.last().is_some_and(|s| s.name == "reprise.recv-deadline"))
        },
    )
    .await
    .expect("steps");
    assert_eq!(
        steps.last().map(|s| s.name.as_str()),
        Some("reprise.recv-deadline"),
        "{id}"
    );
}

async fn ended(harness: &Harness, id: &str) -> reprise_host::WorkflowRecord {
    harness
        .runtime
        .wait(id, Some(std::time::Duration::from_secs(30)))
        .await
        .expect("wait")
        .unwrap_or_else(|| panic!("{id} did not end"))
}

#[tokio::test]
async fn with_upgrade_auto_a_waking_workflow_moves_to_the_newest_version_when_its_history_allows() {
    let instance = InstanceOptions {
        upgrade: UpgradePolicy::Auto,
        ..InstanceOptions::default()
    };
    let harness = Harness::new(RuntimeOptions::single("auto", instance)).await;
    let v1 = harness.component(ORDERS_V1).await;
    parked(&harness, &v1, "o-1", "order", "1").await;
    parked(&harness, &v1, "r-1", "refund", "1").await;
    // Parked, not waiting in place: the wake-up is what checks for a newer version.
    let usage = poll_until(
        || async { harness.runtime.instance_usage() },
        |usage| usage.parked == 2,
    )
    .await;
    assert_eq!(usage.parked, 2, "{usage:?}");
    // A new version is registered: the newest from now on.
    let v2 = harness.component(ORDERS_V2).await;
    let mailbox = harness.runtime.mailbox();
    mailbox
        .send_message("o-1", "ship", "\"now\"", None)
        .await
        .expect("send");
    mailbox
        .send_message("r-1", "approve", "\"yes\"", None)
        .await
        .expect("send");
    let order = ended(&harness, "o-1").await;
    assert_eq!(
        order.output.as_deref(),
        Some("\"charged 1 (checked)\""),
        "moved: {order:?}"
    );
    assert_eq!(order.app_version, v2.digest);
    let refund = ended(&harness, "r-1").await;
    assert_eq!(refund.output.as_deref(), Some("100"), "stayed: {refund:?}");
    assert_eq!(
        refund.app_version, v1.digest,
        "its history diverges on v2: it stays on v1"
    );
    let moves = |steps: Vec<reprise_host::store::StepRecord>| {
        steps.iter().filter(|s| s.name == "reprise.upgrade").count()
    };
    assert_eq!(moves(harness.steps("o-1").await), 1);
    assert_eq!(moves(harness.steps("r-1").await), 0);
}

#[tokio::test]
async fn a_fork_runs_on_new_code_only_from_a_step_whose_history_replays_on_it() {
    let harness = Harness::new(options(3)).await;
    let v1 = harness.component(ORDERS_V1).await;
    parked(&harness, &v1, "r-1", "refund", "1").await;
    let v2 = harness.component(ORDERS_V2).await;
    // Keeping the renamed step: refused, and no fork is made.
    let refused = harness
        .runtime
        .fork("r-1", 1, Some("r-bad".into()), Some(v2.clone()))
        .await
        .expect_err("the kept step diverges");
    assert!(refused.to_string().contains("do not replay"), "{refused}");
    assert!(
        harness
            .store
            .get_workflow("r-bad")
            .await
            .expect("get")
            .is_none()
    );
    // From the start: the fork runs v2's code, its move recorded first.
    let fork = harness
        .runtime
        .fork("r-1", 0, Some("r-fixed".into()), Some(v2.clone()))
        .await
        .expect("fork");
    assert_eq!(fork.app_version, v2.digest);
    let steps = poll_until(
        || harness.store.steps("r-fixed"),
        |s| s.as_ref().is_ok_and(|s| s.iter().any(|s| s.name == "find")),
    )
    .await
    .expect("steps");
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names[..2], ["reprise.upgrade", "find"], "{names:?}");
}

#[tokio::test]
async fn replay_names_the_guests_frames_of_a_trap() {
    let mut harness = Harness::new(options(0)).await;
    let panicked = harness
        .run(crate::guests::CHAOS, "panic", r#""the sky is falling""#)
        .await;
    let database = harness.db_path().display().to_string();
    let (code, text, stderr) = reprise(&["replay", &panicked.id, "--database", &database]);
    assert_eq!(code, Some(1), "{text}{stderr}");
    assert!(
        text.contains("TRAP: panic: guest panicked: the sky is falling"),
        "{text}"
    );
    assert!(
        text.contains("guest backtrace (innermost first):"),
        "{text}"
    );
    // The guests keep their name section: frames are the guest's own functions.
    assert!(text.lines().any(|l| l.contains(": chaos::")), "{text}");
    assert!(
        !text.contains("_ZN") && !text.contains("_RNv"),
        "demangled: {text}"
    );
}

#[tokio::test]
async fn a_reprise_run_driving_a_workflow_goes_on_on_the_code_it_was_moved_to() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("run.db").display().to_string();
    let v1 = guest(ORDERS_V1).display().to_string();
    let v2 = guest(ORDERS_V2).display().to_string();
    let run = Command::new(reprise_bin())
        .args(["run", &v1, "order", "13", "--id", "o-13", "--database", &db])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("reprise run");
    // Once it waits for `ship`, move it, then let it go on.
    let store = reprise_host::store::open_store(&db, reprise_host::Durability::Process)
        .await
        .expect("open");
    let waiting = common::waiting_in_recv(&*store, "o-13").await;
    assert!(waiting.is_ok_and(|s| !s.is_empty()), "o-13 never waited");
    let (code, text, stderr) = reprise(&[
        "workflow",
        "upgrade",
        "o-13",
        "--to",
        &v2,
        "--database",
        &db,
    ]);
    assert_eq!(code, Some(0), "{text}{stderr}");
    let (code, _, stderr) = reprise(&[
        "workflow",
        "send",
        "o-13",
        "ship",
        "\"now\"",
        "--database",
        &db,
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::task::spawn_blocking(move || run.wait_with_output()),
    )
    .await
    .expect("run ended in time")
    .expect("join")
    .expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "\"charged 13 (checked)\"",
        "{stderr}"
    );
    assert!(
        stderr.contains("execution stopped by a move to other code: driving it on"),
        "{stderr}"
    );
}
