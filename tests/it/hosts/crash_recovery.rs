//! A `reprise run` process is SIGKILLed after some steps are committed; a second process
//! resumes the workflow; no committed step runs again and the output is right.

use crate::common;
use crate::guests::FIB;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use common::{checkpointed_ids, guest, read_until_checkpoints, reprise_bin, stderr_lines};
use reprise_host::store::roles::*;
use reprise_host::{Durability, SqliteStore, WorkflowStatus};

#[tokio::test]
async fn a_killed_run_resumes_in_a_new_process_without_rerunning_committed_steps() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("crash.db");
    let cache = dir.path().join("cache");
    let run = |args: &[&str]| {
        let mut cmd = Command::new(reprise_bin());
        cmd.args(args)
            .arg("--database")
            .arg(&db)
            .env("REPRISE_CACHE_DIR", &cache)
            .env("RUST_LOG", "reprise=debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };

    // 8 Fibonacci steps, each followed by a 300 ms durable sleep: time to kill between steps.
    let fib = guest(FIB);
    let mut first = run(&[
        "run",
        &fib.to_string_lossy(),
        "fib_slow",
        "[8, 300]",
        "--id",
        "crash-1",
    ])
    .spawn()
    .expect("spawn reprise run");
    let (first_log, fib_steps_seen) =
        read_until_checkpoints(&mut stderr_lines(&mut first), "fib_step", 3);
    assert_eq!(fib_steps_seen, 3, "first process log:\n{first_log}");
    first.kill().expect("SIGKILL");
    first.wait().expect("reap");

    let store = SqliteStore::open(&db.to_string_lossy(), Durability::Process)
        .await
        .expect("open db");
    let before = store
        .get_workflow("crash-1")
        .await
        .expect("read")
        .expect("workflow exists");
    assert_eq!(
        before.status,
        WorkflowStatus::Pending,
        "a killed run leaves the workflow PENDING"
    );
    let committed: BTreeSet<u32> = store
        .steps("crash-1")
        .await
        .expect("steps")
        .iter()
        .map(|s| s.function_id)
        .collect();
    assert!(
        committed.len() >= 5,
        "3 fib steps and their sleeps committed: {committed:?}"
    );

    let second = run(&["recover"]).output().expect("run reprise recover");
    let second_log = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "recover failed:\n{second_log}");
    let rerun: BTreeSet<u32> = checkpointed_ids(&second_log);
    assert!(
        rerun.is_disjoint(&committed),
        "committed steps ran again: {:?}",
        rerun.intersection(&committed).collect::<Vec<_>>()
    );
    assert!(
        !rerun.is_empty(),
        "the rest of the workflow ran in the second process"
    );

    let after = store
        .get_workflow("crash-1")
        .await
        .expect("read")
        .expect("workflow");
    assert_eq!(after.status, WorkflowStatus::Success, "{after:?}");
    assert_eq!(after.output.as_deref(), Some("21"), "fib(8)");
    assert_eq!(after.executions, 2);
    let steps = store.steps("crash-1").await.expect("steps");
    assert_eq!(steps.len(), 16, "8 steps and 8 sleeps, each recorded once");
    assert_eq!(steps.iter().filter(|s| s.name == "fib_step").count(), 8);
}
