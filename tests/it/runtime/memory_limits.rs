//! A memory limit above the default works end to end: a component whose initial memory
//! (128 MiB) exceeds the default 64 MiB limit loads, is listed, and runs under a larger limit.
//! Under a smaller one it traps, bounded, and a resume must give it room to start.

use crate::common;
use crate::guests::BIGSTATIC;

use std::process::Command;

use common::{guest, reprise_bin};

#[test]
pub(crate) fn a_component_with_a_large_initial_memory_runs_under_a_larger_limit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wasm = guest(BIGSTATIC);
    let run = Command::new(reprise_bin())
        .args(["run"])
        .arg(&wasm)
        .args(["touch", "[5, 7]", "--memory-limit", "256MiB"])
        .env("REPRISE_DATABASE_URL", dir.path().join("reprise.db"))
        .output()
        .expect("run reprise");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "reprise run failed:\n{stderr}");
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), "7");

    let inspect = Command::new(reprise_bin())
        .arg("inspect")
        .arg(&wasm)
        .output()
        .expect("run reprise inspect");
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    assert!(String::from_utf8_lossy(&inspect.stdout).contains("touch"));
}

/// A limit below the component's initial memory is a trap of the workflow, not a host failure:
/// it is bounded like any out-of-memory and ends the workflow instead of leaving it `PENDING`
/// for ever. Resuming it with a limit it cannot start with is refused, naming the minimum;
/// with a workable one it runs.
#[test]
fn a_limit_too_small_to_start_is_a_bounded_trap_and_resume_names_the_minimum() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wasm = guest(BIGSTATIC);
    let reprise = |args: &[&str]| {
        Command::new(reprise_bin())
            .args(args)
            .env("REPRISE_DATABASE_URL", dir.path().join("reprise.db"))
            .env("REPRISE_CACHE_DIR", dir.path().join("cache"))
            .output()
            .expect("run reprise")
    };
    let wasm = wasm.to_string_lossy();
    // 128 MiB of initial memory under the default 64 MiB limit.
    let small = reprise(&[
        "run",
        &wasm,
        "touch",
        "[5, 7]",
        "--id",
        "too-small",
        "--max-recovery-attempts",
        "2",
    ]);
    let said = String::from_utf8_lossy(&small.stderr);
    assert_eq!(small.status.code(), Some(1), "the workflow ended: {said}");
    assert!(
        said.contains("MAX_RECOVERY_ATTEMPTS_EXCEEDED") && said.contains("memory"),
        "{said}"
    );

    let tiny = reprise(&["workflow", "resume", "too-small", "--memory-limit", "1"]);
    let said = String::from_utf8_lossy(&tiny.stderr);
    assert_eq!(tiny.status.code(), Some(2), "{said}");
    let minimum: u64 = said
        .split_once(
            "memory limit of 1 bytes is below what this workflow's component needs to start (",
        )
        .and_then(|(_, rest)| rest.split_once(" bytes"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no minimum named: {said}"));
    assert!(
        minimum >= 128 << 20,
        "its 128 MiB static at least: {minimum}"
    );

    let enough = reprise(&[
        "workflow",
        "resume",
        "too-small",
        "--memory-limit",
        "256MiB",
    ]);
    let said = String::from_utf8_lossy(&enough.stderr);
    assert!(enough.status.success(), "{said}");
    assert_eq!(String::from_utf8_lossy(&enough.stdout).trim(), "7");
}
