//! `reprise run` holds a lease on its executor while it drives. A second `run --id` of the same
//! workflow from another executor waits for its end instead of taking it over, and adopts it
//! only once the first process died and its lease ran out. An id that names a workflow of
//! another name is refused.

use crate::common;
use crate::guests::CHAOS;

use std::path::Path;
use std::process::{Command, Stdio};

use common::server::poll_until;
use common::{guest, reprise_bin, stderr_lines};
use reprise_host::store::roles::*;
use reprise_host::{Durability, SqliteStore, WorkflowStatus};

fn run(db: &Path, executor: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(reprise_bin());
    cmd.args(args)
        .args(["--executor-id", executor, "--database"])
        .arg(db)
        .env("REPRISE_CACHE_DIR", db.parent().expect("dir").join("cache"))
        .env("RUST_LOG", "reprise=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

#[tokio::test]
async fn a_run_waits_for_a_live_owner_and_adopts_only_a_dead_ones_work() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("runs.db");
    let chaos = guest(CHAOS).to_string_lossy().into_owned();
    // Long enough for the second run to start and wait while the first lives.
    let sleepy = ["run", &chaos, "sleepy", "15000", "--id", "shared"];

    let mut first = run(&db, "first", &sleepy).spawn().expect("first run");
    let store = SqliteStore::open(&db.to_string_lossy(), Durability::Process)
        .await
        .expect("open");
    let owned = poll_until(
        || async { store.get_workflow("shared").await.ok().flatten() },
        |w| {
            w.as_ref()
                .is_some_and(|w| w.status == WorkflowStatus::Pending)
        },
    )
    .await
    .expect("the first run recorded the workflow");
    assert_eq!(owned.executor_id, "first");

    let mut second = run(&db, "second", &sleepy).spawn().expect("second run");
    // Its stderr is read to the end on a thread, so it never blocks on a full pipe.
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let reader = stderr_lines(&mut second);
    std::thread::spawn(move || {
        for line in reader.map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut log = String::new();
    for line in lines.iter() {
        log.push_str(&line);
        log.push('\n');
        if line.contains("another executor drives it") {
            break;
        }
    }
    assert!(log.contains("another executor drives it"), "{log}");
    let meanwhile = store
        .get_workflow("shared")
        .await
        .expect("read")
        .expect("row");
    assert_eq!(
        (meanwhile.executor_id.as_str(), meanwhile.epoch),
        ("first", owned.epoch),
        "a live run's workflow is not taken over"
    );

    first.kill().expect("SIGKILL");
    first.wait().expect("reap");
    let done = second.wait_with_output().expect("second run");
    log.extend(lines.iter().map(|line| line + "\n"));
    assert!(done.status.success(), "{log}");
    assert!(
        log.contains("adopted a workflow whose executor's lease ran out"),
        "{log}"
    );
    assert_eq!(String::from_utf8_lossy(&done.stdout).trim(), "\"awake\"");
    let ended = store
        .get_workflow("shared")
        .await
        .expect("read")
        .expect("row");
    assert_eq!(ended.status, WorkflowStatus::Success);
    assert_eq!(
        ended.executor_id, "second",
        "adopted once the first was dead"
    );

    // The same id for another workflow is refused, and the ended one is left as it was.
    let other = run(
        &db,
        "third",
        &["run", &chaos, "echo", "1", "--id", "shared"],
    )
    .output()
    .expect("third run");
    let said = String::from_utf8_lossy(&other.stderr);
    assert_eq!(other.status.code(), Some(2), "{said}");
    assert!(
        said.contains("workflow id shared is taken by a \"sleepy\" workflow"),
        "{said}"
    );
    let unchanged = store
        .get_workflow("shared")
        .await
        .expect("read")
        .expect("row");
    assert_eq!(unchanged.epoch, ended.epoch);
}
