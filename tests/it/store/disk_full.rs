//! A database that cannot grow: every success a user sees (HTTP 201, `SUCCESS`, exit 0) is on
//! disk, and every lost write is the error the user sees.
//!
//! The file-size resource limit (`RLIMIT_FSIZE`, set with util-linux's `prlimit`) makes the
//! kernel refuse a write past a size, as a full disk refuses it: unprivileged and on any Linux.
//! SQLite's own `max_page_count` cannot stand in here: it fails the statement that would grow
//! the file, while a real full disk fails the commit that writes the WAL, and it is a failed
//! commit that was once reported as a success.

use crate::common;
use crate::guests::FIB;

use std::path::Path;
use std::process::Command;

use common::server::{Server, config};
use common::{guest, reprise_bin};
use reprise_host::store::roles::*;
use reprise_host::{Durability, SqliteStore, WorkflowStatus};
use serde_json::{Value, json};

/// Lowers the file-size limit of a running process to `bytes`.
fn limit_file_size(pid: u32, bytes: u64) {
    let status = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--fsize={bytes}"))
        .status()
        .expect("run prlimit (util-linux)");
    assert!(status.success(), "prlimit failed");
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

async fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path.to_str().expect("utf-8 path"), Durability::Process)
        .await
        .expect("reopen the database without a limit")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_201_only_for_workflows_on_disk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &config(dir.path(), ""));
    let wal = dir.path().join("serve.db-wal");
    // Room for a few dozen commits past what start-up wrote, far less than the requests need.
    limit_file_size(server.child.id(), file_size(&wal) + 256 * 1024);

    let http = reqwest::Client::new();
    let (mut acknowledged, mut refusals) = (Vec::new(), Vec::new());
    for i in 0..2000 {
        let id = format!("wf-{i}");
        let response = http
            .post(format!("{}/workflows", server.url))
            .bearer_auth("secret")
            .json(&json!({"workflow": "fib", "input": 20, "id": id, "queue": "fib"}))
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("every answer is JSON");
        if (200..300).contains(&status) {
            acknowledged.push(id);
        } else {
            refusals.push((status, body));
            if refusals.len() >= 20 {
                break;
            }
        }
    }
    assert!(
        refusals.len() >= 20,
        "the limit was never hit: {} acknowledged",
        acknowledged.len()
    );
    assert!(!acknowledged.is_empty(), "nothing fit: {refusals:?}");
    for (status, body) in &refusals {
        assert_eq!(*status, 507, "{body}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(
            message.contains("cannot write the database"),
            "the error names the cause: {body}"
        );
    }
    drop(server);

    let store = open(&dir.path().join("serve.db")).await;
    let mut lost = Vec::new();
    for id in &acknowledged {
        if store.get_workflow(id).await.expect("read").is_none() {
            lost.push(id.clone());
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged workflows are not in the database: {:?}",
        lost.len(),
        acknowledged.len(),
        &lost[..lost.len().min(10)]
    );
}

/// Runs `reprise run fib.wasm fib 5 --id <id>`, under a file-size limit of `limit` bytes. An
/// 8 KiB config value, kept in the workflow's row, makes its start write more than the 7 WAL
/// frames the smallest limit leaves room for, however few indexes the row touches.
fn run_limited(db: &Path, cache: &Path, id: &str, limit: Option<u64>) -> std::process::Output {
    run_limited_as(db, cache, Some(id), limit)
}

/// [`run_limited`], with a generated id when `id` is `None`.
fn run_limited_as(
    db: &Path,
    cache: &Path,
    id: Option<&str>,
    limit: Option<u64>,
) -> std::process::Output {
    let mut command = match limit {
        Some(bytes) => {
            let mut prlimit = Command::new("prlimit");
            prlimit
                .arg(format!("--fsize={bytes}"))
                .arg("--")
                .arg(reprise_bin());
            prlimit
        }
        None => Command::new(reprise_bin()),
    };
    command
        .arg("run")
        .arg(guest(FIB))
        .args(["fib", "5"])
        .args(id.map(|id| ["--id", id]).into_iter().flatten())
        .arg("--config")
        .arg(format!("padding={}", "x".repeat(8192)))
        .arg("--database")
        .arg(db)
        .env("REPRISE_CACHE_DIR", cache)
        .output()
        .expect("spawn reprise run")
}

/// A run with a generated id writes its row at its first durable call: refused there, nothing
/// is stored, and the error says the start failed, not that a stored workflow stays PENDING.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_refused_before_its_row_is_written_stores_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("cache");
    let db = dir.path().join("run.db");
    let first = run_limited(&db, &cache, "seed", None);
    assert!(first.status.success(), "{first:?}");
    open(&db).await.close().await;

    let out = run_limited_as(&db, &cache, None, Some(32 * 1024));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot write the database"), "{stderr}");
    assert!(!stderr.contains("is stored"), "{stderr}");
    let store = open(&db).await;
    let listed = store
        .list_workflows(&Default::default())
        .await
        .expect("list");
    store.close().await;
    let ids: Vec<_> = listed.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids, ["seed"], "only the seed's workflow is stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reports_success_only_when_the_ending_is_on_disk() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("cache");
    let seed = dir.path().join("seed.db");
    // A first run creates the schema and stores the component; closing the store folds the WAL
    // into the file, so each limited run starts from a copy with an empty WAL.
    let first = run_limited(&seed, &cache, "seed", None);
    assert!(first.status.success(), "{first:?}");
    open(&seed).await.close().await;
    assert_eq!(file_size(&dir.path().join("seed.db-wal")), 0);

    let (mut refused_before, mut refused_after_start) = (0, 0);
    // The limit binds the WAL (the database file is only written at checkpoints, within its
    // size). WAL frames are a 4 KiB page plus a header: half-frame steps land the failing write
    // on each of the run's commits in turn, from the start to the ending, until one fits.
    // 32 KiB is the shared-memory index's size, which must fit too.
    for i in 0..80u64 {
        let db = dir.path().join(format!("run-{i}.db"));
        std::fs::copy(&seed, &db).expect("copy the seed database");
        let limit = 32 * 1024 + i * 2060;
        let out = run_limited(&db, &cache, "wf", Some(limit));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let store = open(&db).await;
        let record = store.get_workflow("wf").await.expect("read");
        store.close().await;
        match out.status.code() {
            Some(0) => {
                assert_eq!(
                    record.map(|r| r.status),
                    Some(WorkflowStatus::Success),
                    "limit {limit}: exit 0 but the database disagrees; stderr: {stderr}"
                );
                assert!(
                    refused_before > 0 && refused_after_start > 0,
                    "limit {limit}: success came before the limit failed both a start and a \
                     running workflow ({refused_before}, {refused_after_start})"
                );
                return;
            }
            Some(code) => {
                assert!(
                    stderr.contains("cannot write the database"),
                    "limit {limit}: exit {code} without naming the cause: {stderr}"
                );
                assert!(!stderr.contains("SUCCESS"), "limit {limit}: {stderr}");
                match record {
                    // Nothing ran: the workflow was never stored.
                    None => {
                        assert_eq!(code, 2, "limit {limit}: {stderr}");
                        refused_before += 1;
                    }
                    // It started: it stays PENDING, to resume, and the exit code says so.
                    Some(record) => {
                        assert_eq!(record.status, WorkflowStatus::Pending, "limit {limit}");
                        assert_eq!(code, 3, "limit {limit}: {stderr}");
                        refused_after_start += 1;
                    }
                }
            }
            None => panic!("limit {limit}: killed by a signal: {out:?}"),
        }
    }
    panic!("no limit up to 196 KiB let `fib 5` finish");
}

#[test]
fn run_fails_when_its_database_file_is_deleted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("doomed.db");
    let mut child = Command::new(reprise_bin())
        .arg("run")
        .arg(guest(FIB))
        .args(["fib_slow", "[40, 50]", "--id", "wf", "--database"])
        .arg(&db)
        .env("REPRISE_CACHE_DIR", dir.path().join("cache"))
        .env("RUST_LOG", "reprise=debug,guest=info")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn reprise run");
    let mut lines = common::stderr_lines(&mut child);
    let (log, seen) = common::read_until_checkpoints(&mut lines, "fib_step", 2);
    assert_eq!(seen, 2, "the run did not get going: {log}");
    std::fs::remove_file(&db).expect("delete the database file");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("wait for reprise run");
    let stderr = rest.join("\n");
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(!stderr.contains("SUCCESS"), "{stderr}");
    assert!(
        stderr.contains(&format!("{} was deleted", db.display())),
        "the error names the deleted file: {stderr}"
    );
}
