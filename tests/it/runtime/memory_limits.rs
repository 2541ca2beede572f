//! A memory limit above the default works end to end: a component whose initial memory
//! (128 MiB) exceeds the default 64 MiB limit loads, is listed, and runs under a larger limit.

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
