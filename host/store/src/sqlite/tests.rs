//! The SQLite backend's own tests: group commit, batches that fail in part or as a whole,
//! opening files. What every backend must do is the contract suite's (tests/it/store/ at the
//! workspace root), which runs on SQLite and on Postgres alike.

use std::sync::Arc;

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use super::{Durability, SqliteStore};
use crate::roles::*;
use crate::{NewWorkflow, StepRecord, StoreError, TrapRecord, WorkflowEnd, WorkflowStatus};

fn new_workflow(id: &str) -> NewWorkflow {
    NewWorkflow {
        max_recovery_attempts: 3,
        ..NewWorkflow::new(id, "greet", r#"{"who":"world"}"#, "exec-a", "sha256:abc")
    }
}

/// Begins an execution under the workflow's current epoch (what a recovery that just read it
/// does); the new execution count. An unknown workflow is the store's error.
async fn begin(
    store: &(impl Store + ?Sized),
    id: &str,
    executor_id: &str,
) -> Result<u32, StoreError> {
    let epoch = store.get_workflow(id).await?.map_or(0, |w| w.epoch);
    Ok(store
        .begin_execution(id, executor_id, epoch)
        .await?
        .executions)
}

fn step(workflow_id: &str, function_id: u32) -> StepRecord {
    StepRecord {
        workflow_id: workflow_id.to_owned(),
        function_id,
        name: format!("step-{function_id}"),
        output: Some(format!("{function_id}")),
        error: None,
        attempts: 1,
        started_at: 1_000 + i64::from(function_id),
        completed_at: 2_000 + i64::from(function_id),
        epoch: None,
        committed_epoch: None,
        args: None,
    }
}

fn queued(id: &str, queue: &str, priority: i32) -> NewWorkflow {
    NewWorkflow {
        queue_name: Some(queue.to_owned()),
        priority,
        ..new_workflow(id)
    }
}

/// Lets the writer go once the requests polled before it are queued: `tokio::join!` polls
/// them in order, and this one, last, yields once before it drops `hold`.
async fn release(hold: tokio::sync::OwnedMutexGuard<()>) {
    tokio::task::yield_now().await;
    drop(hold);
}

async fn open_temp(durability: Durability) -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("reprise.db");
    let store = SqliteStore::open(path.to_str().expect("utf-8 path"), durability)
        .await
        .expect("open store");
    (dir, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_steps_share_commits() {
    let (_dir, store) = open_temp(Durability::Synced).await;
    let store = Arc::new(store);
    store
        .insert_workflow(&new_workflow("wf"))
        .await
        .expect("insert");
    let before = store.commits();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.record_step(&step("wf", i)).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("record");
    }
    let commits = store.commits() - before;
    assert_eq!(store.steps("wf").await.expect("steps").len(), 200);
    assert!(commits < 50, "200 steps took {commits} commits");
}

#[tokio::test]
async fn a_failing_request_does_not_sink_its_batch() {
    let (_dir, store) = open_temp(Durability::Process).await;
    // Without the lane, which would commit the steps that find the writer's queue empty.
    let store = Arc::new(store.without_lane());
    store
        .insert_workflow(&new_workflow("wf"))
        .await
        .expect("insert");
    store.record_step(&step("wf", 0)).await.expect("record");
    let before = store.commits();
    // Spawned together on this single-threaded runtime, they all queue their steps before
    // this task runs again, and the held writer takes them as one batch.
    let hold = store.hold_writer().await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.record_step(&step("wf", i % 10)).await })
        })
        .collect();
    tokio::task::yield_now().await;
    drop(hold);
    let mut duplicates = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(()) => {}
            Err(StoreError::StepAlreadyRecorded { .. }) => duplicates += 1,
            Err(err) => panic!("unexpected {err:?}"),
        }
    }
    // Step 0 existed, steps 1..10 were each sent twice: 2 + 9 duplicates.
    assert_eq!(duplicates, 11);
    assert!(store.commits() - before < 10, "the steps were not batched");
    assert_eq!(store.steps("wf").await.expect("steps").len(), 10);
}

#[tokio::test]
async fn mixed_requests_in_one_batch_each_get_their_own_answer() {
    let (_dir, store) = open_temp(Durability::Process).await;
    store
        .insert_workflow(&new_workflow("old"))
        .await
        .expect("insert");
    let before = store.commits();
    // Polled in order by one task, the requests are all queued before the writer goes on.
    let end = WorkflowEnd::Success("1".to_owned());
    let (new, old) = (new_workflow("new"), new_workflow("old"));
    let (new_step, stray_step) = (step("new", 0), step("ghost", 0));
    let hold = store.hold_writer().await;
    let (fresh, again, began, stepped, ghost_step, trapped, ghost_trap, finished, ()) = tokio::join!(
        store.insert_workflow(&new),
        store.insert_workflow(&old),
        store.begin_execution("new", "exec-b", 0),
        store.record_step(&new_step),
        store.record_step(&stray_step),
        store.record_trap(
            "old",
            &TrapRecord {
                class: "panic",
                message: "boom",
                memory_limit: None,
                epoch: None,
            }
        ),
        store.record_trap(
            "ghost",
            &TrapRecord {
                class: "panic",
                message: "boom",
                memory_limit: None,
                epoch: None,
            }
        ),
        store.finish_workflow("new", &end, None),
        release(hold),
    );
    assert_eq!(
        store.commits() - before,
        1,
        "expected a single group commit"
    );
    assert!(fresh.expect("fresh").created);
    assert!(!again.expect("again").created);
    assert_eq!(began.expect("began").executions, 1);
    stepped.expect("stepped");
    assert!(
        matches!(ghost_step, Err(StoreError::UnknownWorkflow(_))),
        "{ghost_step:?}"
    );
    trapped.expect("trapped");
    assert!(
        matches!(ghost_trap, Err(StoreError::UnknownWorkflow(_))),
        "{ghost_trap:?}"
    );
    finished.expect("finished");

    let new = store
        .get_workflow("new")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!((new.status, new.executions), (WorkflowStatus::Success, 1));
    // Read back with the epoch of the execution that committed it.
    let committed = StepRecord {
        committed_epoch: Some(1),
        ..step("new", 0)
    };
    assert_eq!(store.steps("new").await.expect("steps"), vec![committed]);
    let old = store
        .get_workflow("old")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(old.trap_class.as_deref(), Some("panic"));
}

#[tokio::test]
async fn a_rejected_insert_does_not_sink_the_batch_it_shares() {
    let (_dir, store) = open_temp(Durability::Process).await;
    let with_key = |id: &str, queue: &str| NewWorkflow {
        deduplication_id: Some("order-7".to_owned()),
        ..queued(id, queue, 0)
    };
    store
        .insert_workflow(&with_key("b", "q"))
        .await
        .expect("insert");
    store
        .insert_workflow(&new_workflow("wf"))
        .await
        .expect("insert");
    let before = store.commits();
    let (dup, other_step, fresh) = (with_key("d", "q"), step("wf", 0), with_key("e", "q2"));
    let hold = store.hold_writer().await;
    let (dup, stepped, fresh, ()) = tokio::join!(
        store.insert_workflow(&dup),
        store.record_step(&other_step),
        store.insert_workflow(&fresh),
        release(hold),
    );
    assert_eq!(
        store.commits() - before,
        1,
        "expected a single group commit"
    );
    assert!(matches!(dup, Err(StoreError::Duplicate { .. })), "{dup:?}");
    stepped.expect("step");
    assert!(fresh.expect("fresh").created);
    assert_eq!(store.steps("wf").await.expect("steps").len(), 1);
}

#[tokio::test]
async fn forks_in_a_shared_batch_get_their_own_answers() {
    let (_dir, store) = open_temp(Durability::Process).await;
    store
        .insert_workflow(&new_workflow("orig"))
        .await
        .expect("insert");
    for i in 0..5 {
        store.record_step(&step("orig", i)).await.expect("record");
    }
    store
        .finish_workflow("orig", &WorkflowEnd::Error("bad".to_owned()), None)
        .await
        .expect("finish");
    store.fork_workflow("orig", "fork", 3).await.expect("fork");
    store.fork_workflow("orig", "fresh", 0).await.expect("fork");

    let fresh_step = step("fresh", 0);
    let before = store.commits();
    let hold = store.hold_writer().await;
    let (forked, taken, stepped, ()) = tokio::join!(
        store.fork_workflow("orig", "batched", 5),
        store.fork_workflow("orig", "fork", 5),
        store.record_step(&fresh_step),
        release(hold),
    );
    assert_eq!(
        store.commits() - before,
        1,
        "expected a single group commit"
    );
    assert_eq!(forked.expect("fork").id, "batched");
    assert!(
        matches!(taken, Err(StoreError::WorkflowExists(_))),
        "{taken:?}"
    );
    stepped.expect("step");
    assert_eq!(store.steps("batched").await.expect("steps").len(), 5);
    assert_eq!(store.steps("fork").await.expect("steps").len(), 3);
}

#[tokio::test]
async fn a_batch_that_fails_as_a_whole_is_rolled_back_and_the_writer_recovers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("reprise.db");
    let path = path.to_str().expect("utf-8 path");
    // A tiny size cap makes SQLite fail with SQLITE_FULL, which may roll back the whole
    // transaction rather than one statement.
    let base = SqliteConnectOptions::new()
        .filename(path)
        .pragma("max_page_count", "64");
    // Without the step lane, whose own connection knows nothing of the test's size cap: the
    // three writes below must meet in one batch of the writer.
    let store = SqliteStore::open_with(path, base, Durability::Process)
        .await
        .expect("open")
        .without_lane();
    store
        .insert_workflow(&new_workflow("wf"))
        .await
        .expect("insert");
    let huge = vec![7u8; 1 << 20];
    let (first, second) = (step("wf", 0), step("wf", 1));
    let hold = store.hold_writer().await;
    let (a, full, b, ()) = tokio::join!(
        store.record_step(&first),
        store.put_component("sha256:huge", &huge, None),
        store.record_step(&second),
        release(hold),
    );
    assert!(matches!(full, Err(StoreError::Storage(_))), "{full:?}");
    assert!(a.is_err() && b.is_err(), "{a:?} {b:?}");
    assert!(store.steps("wf").await.expect("steps").is_empty());
    // Later writes still work.
    store
        .record_step(&first)
        .await
        .expect("record after failure");
    store
        .record_step(&second)
        .await
        .expect("record after failure");
    assert_eq!(store.steps("wf").await.expect("steps").len(), 2);
}

#[tokio::test]
async fn missing_directory_is_an_open_error_naming_the_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("no-such-dir").join("reprise.db");
    let path = path.to_str().expect("utf-8 path");
    for url in [
        path.to_owned(),
        format!("sqlite://{path}"),
        format!("sqlite:{path}"),
    ] {
        let err = SqliteStore::open(&url, Durability::Synced)
            .await
            .expect_err("must fail");
        assert!(
            matches!(&err, StoreError::Open { url: u, .. } if *u == url),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(path), "{message}");
        assert!(message.contains("does not exist"), "{message}");
    }
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_an_open_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("garbage.db");
    std::fs::write(&path, vec![0x42u8; 8192]).expect("write garbage");
    let err = SqliteStore::open(path.to_str().expect("utf-8"), Durability::Synced)
        .await
        .expect_err("must fail");
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
}

#[tokio::test]
async fn reopening_keeps_the_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("reprise.db");
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::open(&url, Durability::Synced)
        .await
        .expect("open");
    store
        .insert_workflow(&new_workflow("wf"))
        .await
        .expect("insert");
    begin(&store, "wf", "exec-a").await.expect("begin");
    store.record_step(&step("wf", 0)).await.expect("record");
    // Dropped without `close`: what was acknowledged is committed regardless.
    drop(store);

    let store = SqliteStore::open(path.to_str().expect("utf-8"), Durability::Synced)
        .await
        .expect("reopen");
    let record = store.get_workflow("wf").await.expect("get").expect("kept");
    assert_eq!(record.executions, 1);
    let committed = StepRecord {
        committed_epoch: Some(1),
        ..step("wf", 0)
    };
    assert_eq!(store.steps("wf").await.expect("steps"), vec![committed]);
    let again = store
        .insert_workflow(&new_workflow("wf"))
        .await
        .expect("insert");
    assert!(!again.created);
}

/// SQLite keeps whatever is written to a column, so a hand edit can leave text where a number
/// belongs; the error keeps sqlx's own, naming the column, as its source.
#[tokio::test]
async fn a_value_of_the_wrong_type_is_a_corrupt_value() {
    let (dir, store) = open_temp(Durability::Process).await;
    store
        .insert_workflow(&new_workflow("wf"))
        .await
        .expect("insert");
    let url = format!("sqlite:{}", dir.path().join("reprise.db").display());
    let mut conn = SqliteConnection::connect(&url).await.expect("raw");
    sqlx::query("UPDATE workflow_status SET created_at = 'yesterday'")
        .execute(&mut conn)
        .await
        .expect("edit");
    conn.close().await.expect("close raw");

    let err = store
        .get_workflow("wf")
        .await
        .expect_err("text in an integer column");
    assert!(
        matches!(
            err,
            StoreError::CorruptValue {
                table: "workflow_status",
                ..
            }
        ),
        "{err:?}"
    );
    let source = std::error::Error::source(&err)
        .expect("a typed source")
        .to_string();
    assert!(source.contains("created_at"), "{source}");
}

#[test]
fn durability_parses_and_prints() {
    assert_eq!(Durability::default(), Durability::Synced);
    for d in [Durability::Synced, Durability::Process] {
        assert_eq!(d.to_string().parse::<Durability>(), Ok(d));
    }
    assert_eq!("PROCESS".parse::<Durability>(), Ok(Durability::Process));
    assert!("fast".parse::<Durability>().is_err());
    assert_eq!(
        serde_json::to_string(&Durability::Process).expect("json"),
        "\"process\""
    );
    assert_eq!(
        serde_json::from_str::<Durability>("\"synced\"").expect("json"),
        Durability::Synced
    );
}

#[test]
fn processes_opening_a_new_database_at_once_all_get_its_schema() {
    for round in 0..5 {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("new.db");
        let path = path.to_str().expect("utf-8 path").to_owned();
        // A runtime and a connection each, started together, as separate processes are.
        let start = Arc::new(std::sync::Barrier::new(6));
        let opens: Vec<_> = (0..6)
            .map(|_| {
                let (path, start) = (path.clone(), Arc::clone(&start));
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    start.wait();
                    runtime.block_on(async {
                        let store = SqliteStore::open(&path, Durability::Process).await?;
                        store.insert_workflow(&new_workflow("w")).await?;
                        store.get_workflow("w").await
                    })
                })
            })
            .collect();
        for open in opens {
            let read = open.join().expect("thread");
            let read = read.unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert!(read.is_some(), "round {round}: the workflow is there");
        }
    }
}

#[tokio::test]
async fn a_workflow_alone_commits_its_steps_on_the_lane() {
    let (_dir, store) = open_temp(Durability::Process).await;
    store
        .insert_workflow(&new_workflow("wf"))
        .await
        .expect("insert");
    let (commits, lane) = (store.commits(), store.lane_commits());
    for i in 0..10 {
        store.record_step(&step("wf", i)).await.expect("record");
        // Committed before the call returned: a reader sees it at once.
        let steps = store.steps("wf").await.expect("steps");
        assert_eq!(steps.len(), i as usize + 1);
    }
    assert_eq!(store.lane_commits() - lane, 10, "the steps took the lane");
    assert_eq!(
        store.commits() - commits,
        10,
        "lane commits count as commits"
    );
}

#[tokio::test]
async fn at_synced_every_step_shares_the_writers_fsync() {
    let (_dir, store) = open_temp(Durability::Synced).await;
    store
        .insert_workflow(&new_workflow("wf"))
        .await
        .expect("insert");
    for i in 0..5 {
        store.record_step(&step("wf", i)).await.expect("record");
    }
    assert_eq!(store.lane_commits(), 0, "no step took the lane");
    assert_eq!(store.steps("wf").await.expect("steps").len(), 5);
}

#[tokio::test]
async fn the_lane_refuses_what_the_writer_refuses() {
    let (_dir, store) = open_temp(Durability::Process).await;
    store
        .insert_workflow(&new_workflow("wf"))
        .await
        .expect("insert");
    let epoch = store
        .get_workflow("wf")
        .await
        .expect("read")
        .expect("row")
        .epoch;
    store.record_step(&step("wf", 0)).await.expect("record");
    let lane = store.lane_commits();

    let duplicate = store.record_step(&step("wf", 0)).await;
    assert!(
        matches!(
            duplicate,
            Err(StoreError::StepAlreadyRecorded { function_id: 0, .. })
        ),
        "{duplicate:?}"
    );
    let stale = StepRecord {
        epoch: Some(epoch + 1),
        ..step("wf", 1)
    };
    let fenced = store.record_step(&stale).await;
    assert!(
        matches!(fenced, Err(StoreError::Fenced { .. })),
        "{fenced:?}"
    );
    let unknown = store.record_step(&step("nobody", 0)).await;
    assert!(
        matches!(unknown, Err(StoreError::UnknownWorkflow(_))),
        "{unknown:?}"
    );
    assert_eq!(store.lane_commits(), lane, "a refused step commits nothing");
    let steps = store.steps("wf").await.expect("steps");
    assert_eq!(steps.len(), 1);
    assert_eq!(
        steps[0].output.as_deref(),
        Some("0"),
        "the first write stands"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_taking_turns_share_the_writers_commits() {
    let (_dir, store) = open_temp(Durability::Process).await;
    let store = Arc::new(store);
    for w in 0..20 {
        store
            .insert_workflow(&new_workflow(&format!("wf-{w}")))
            .await
            .expect("insert");
    }
    let before = store.commits();
    let tasks: Vec<_> = (0..20)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for i in 0..10 {
                    store.record_step(&step(&format!("wf-{w}"), i)).await?;
                }
                Ok::<_, StoreError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("record");
    }
    let commits = store.commits() - before;
    assert!(
        commits < 100,
        "200 steps of 20 workflows took {commits} commits"
    );
}

#[tokio::test]
async fn a_write_lock_held_elsewhere_sends_the_step_to_the_writer_without_holding_the_thread() {
    let (dir, store) = open_temp(Durability::Process).await;
    let store = Arc::new(store);
    store
        .insert_workflow(&new_workflow("wf"))
        .await
        .expect("insert");
    store.record_step(&step("wf", 0)).await.expect("record");
    assert_eq!(store.lane_commits(), 1);
    // Another process takes the write lock.
    let other = rusqlite::Connection::open(dir.path().join("reprise.db")).expect("open");
    other.execute_batch("BEGIN IMMEDIATE").expect("lock");
    let pending = tokio::spawn({
        let store = Arc::clone(&store);
        async move { store.record_step(&step("wf", 1)).await }
    });
    // On this one-thread runtime the step runs now: had the lane waited for the lock on the
    // thread, this would return only after SQLite's busy timeout.
    let asked = std::time::Instant::now();
    tokio::task::yield_now().await;
    assert!(asked.elapsed() < std::time::Duration::from_secs(1));
    assert!(
        !pending.is_finished(),
        "recorded while another held the lock"
    );
    other.execute_batch("COMMIT").expect("unlock");
    pending
        .await
        .expect("task")
        .expect("recorded once the lock was free");
    assert_eq!(store.lane_commits(), 1, "the writer committed it");
    assert_eq!(store.steps("wf").await.expect("steps").len(), 2);
}
