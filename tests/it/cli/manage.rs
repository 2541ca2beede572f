//! Managing workflows from the command line across processes: a workflow running in one
//! `reprise run` is cancelled by `reprise workflow cancel` from another, resumed from its last
//! checkpoint, and forked from a step.

use crate::common;
use crate::guests::FIB;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{checkpointed_ids, guest, read_until_checkpoints, reprise_bin, stderr_lines};

/// `reprise <args> --database <dir>/manage.db`: the database flag follows the subcommand.
fn reprise(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(reprise_bin());
    cmd.args(args)
        .arg("--database")
        .arg(dir.join("manage.db"))
        .env("REPRISE_CACHE_DIR", dir.join("cache"))
        .env("RUST_LOG", "reprise=debug");
    cmd
}

fn steps(dir: &Path, id: &str) -> Vec<serde_json::Value> {
    let out = reprise(dir, &["workflow", "steps", id, "--json"])
        .output()
        .expect("steps");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .expect("json")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn cancel_from_another_process_then_resume_and_fork_from_the_cli() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fib = guest(FIB);

    // 10 steps, each followed by a 200 ms durable sleep.
    let mut running = reprise(
        dir.path(),
        &[
            "run",
            &fib.to_string_lossy(),
            "fib_slow",
            "[10, 200]",
            "--id",
            "w1",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn run");
    let mut lines = stderr_lines(&mut running);
    let (mut log, checkpoints) = read_until_checkpoints(&mut lines, "fib_step", 2);
    assert_eq!(checkpoints, 2, "{log}");

    let cancel = reprise(dir.path(), &["workflow", "cancel", "w1"])
        .output()
        .expect("cancel");
    assert!(
        cancel.status.success(),
        "{}",
        String::from_utf8_lossy(&cancel.stderr)
    );
    for line in lines {
        log.push_str(&line.unwrap_or_default());
        log.push('\n');
    }
    let ended = running.wait_with_output().expect("run ends");
    assert_eq!(
        ended.status.code(),
        Some(1),
        "the cancelled run reports failure:\n{log}"
    );
    assert!(log.contains("w1 CANCELLED"), "{log}");
    let at_cancel = steps(dir.path(), "w1").len();
    assert!(at_cancel < 20, "stopped early: {at_cancel} of 20 positions");

    let resumed = reprise(dir.path(), &["workflow", "resume", "w1"])
        .output()
        .expect("resume");
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&resumed.stdout).trim(),
        "55",
        "fib(10)"
    );
    let resume_log = String::from_utf8_lossy(&resumed.stderr);
    let rerun = checkpointed_ids(&resume_log);
    assert!(
        rerun.iter().all(|id| *id as usize >= at_cancel),
        "recorded positions did not run again: {rerun:?}"
    );
    let original = steps(dir.path(), "w1");
    assert_eq!(original.len(), 20);

    let fork = reprise(
        dir.path(),
        &[
            "workflow",
            "fork",
            "w1",
            "--from-step",
            "4",
            "--new-id",
            "w2",
        ],
    )
    .output()
    .expect("fork");
    assert!(
        fork.status.success(),
        "{}",
        String::from_utf8_lossy(&fork.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&fork.stdout).trim(), "55");
    let forked = steps(dir.path(), "w2");
    assert_eq!(forked.len(), 20);
    for i in 0..20 {
        let copied = forked[i]["completed_at"] == original[i]["completed_at"];
        assert_eq!(
            copied,
            i < 4,
            "position {i} copied iff before the fork point"
        );
    }
}
