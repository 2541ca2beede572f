//! The Postgres backend against a real, throwaway Postgres cluster: real guests on the real
//! runtime (as the SQLite tests run them), and queue claims from two store handles at once.
//!
//! Each test starts its own cluster (`initdb` + `pg_ctl`) in a temp dir on a free port, as the
//! `postgres` user when the tests run as root (Postgres refuses to run as root), and stops it
//! when done. Without Postgres binaries the tests print why and pass: the only allowed skip.

mod common;

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use common::{Harness, options, with_limits};
use reprise::store::{
    NewWorkflow, PostgresStore, QueueClaim, Store, StoreError, WorkflowEnd, open_store,
};
use reprise::{Durability, InstanceLimits, RuntimeOptions, WorkflowStatus};
use sqlx::Connection;

/// A Postgres cluster of its own, stopped (immediately) and deleted on drop.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`, if any.
fn postgres_bin_dir() -> Option<PathBuf> {
    let has_all = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|d| has_all(d))
    {
        return Some(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|dir| has_all(dir))
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

fn check(what: &str, output: std::io::Result<Output>) {
    let output = output.unwrap_or_else(|err| panic!("{what}: {err}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Cluster {
    /// Starts a cluster, or says why it cannot and returns `None`.
    fn start() -> Option<Cluster> {
        let Some(bin) = postgres_bin_dir() else {
            eprintln!(
                "SKIPPED: no Postgres binaries (initdb, pg_ctl, postgres) on PATH or in \
                 /usr/lib/postgresql/*/bin"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let as_postgres = is_root();
        if as_postgres {
            check(
                "chown the cluster dir to postgres",
                Command::new("chown")
                    .args(["-R", "postgres"])
                    .arg(dir.path())
                    .output(),
            );
        }
        let cluster = Cluster {
            bin,
            dir,
            port: free_port(),
            as_postgres,
        };
        let data = cluster.data();
        check(
            "initdb",
            cluster
                .command("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", "postgres", "--no-sync"])
                .output(),
        );
        let server_options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            cluster.port,
            cluster.dir.path().display()
        );
        check(
            "pg_ctl start",
            cluster
                .command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-o", &server_options, "-w", "-l"])
                .arg(cluster.dir.path().join("server.log"))
                .arg("start")
                .output(),
        );
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A Postgres tool, run as the `postgres` user when we are root.
    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        let mut command = if !self.as_postgres {
            Command::new(program)
        } else if Path::new("/usr/sbin/runuser").exists() || which("runuser") {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            // `su -c` takes one shell command line; the arguments follow as $0, $1, ….
            let mut command = Command::new("su");
            command
                .args(["postgres", "-s", "/bin/sh", "-c", "exec \"$0\" \"$@\""])
                .arg(program);
            command
        };
        // Somewhere the postgres user may enter.
        command.current_dir(self.dir.path());
        command
    }

    /// Creates a fresh database and returns its URL.
    async fn database(&self, name: &str) -> String {
        let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .expect("connect to the postgres database");
        // `name` is one of this file's constants.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .expect("create database");
        conn.close().await.expect("close admin connection");
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let stopped = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        if let Ok(out) = stopped
            && !out.status.success()
        {
            eprintln!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// A cluster, a fresh database on it and a store open on that database.
async fn store(name: &str) -> Option<(Cluster, String, Arc<dyn Store>)> {
    let cluster = Cluster::start()?;
    let url = cluster.database(name).await;
    let store = open_store(&url, Durability::Synced)
        .await
        .expect("open postgres store");
    Some((cluster, url, store))
}

fn queued(id: &str, queue: &str) -> NewWorkflow {
    NewWorkflow {
        id: id.to_owned(),
        name: "greet".to_owned(),
        input: "null".to_owned(),
        executor_id: "exec-0".to_owned(),
        app_version: "sha256:abc".to_owned(),
        instance: "default".to_owned(),
        config: "{}".to_owned(),
        max_recovery_attempts: 3,
        begin_execution: false,
        queue_name: Some(queue.to_owned()),
        priority: 0,
        deduplication_id: None,
        parent_workflow_id: None,
    }
}

#[tokio::test]
async fn fib_runs_and_an_existing_id_returns_the_same_record() {
    let Some((_cluster, _url, store)) = store("fib").await else {
        return;
    };
    let mut h = Harness::with_store(store, options(3)).await;
    let component = h.component("fib").await;
    let first = h
        .runtime
        .run(&component, "fib", "10", Some("fib-10".into()))
        .await
        .expect("run");
    assert_eq!(first.status, WorkflowStatus::Success, "{first:?}");
    assert_eq!(first.output.as_deref(), Some("55"));
    assert_eq!(first.executions, 1);
    assert!(first.started_at.is_some(), "{first:?}");
    let steps = h.steps("fib-10").await;
    assert_eq!(steps.len(), 10, "{steps:?}");
    assert!(
        steps
            .iter()
            .all(|s| s.name == "fib_step" && s.error.is_none())
    );
    assert_eq!(
        steps.iter().map(|s| s.function_id).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    let executed = h.executions_of("fib-10", "fib_step");
    assert_eq!(executed, 10);

    let again = h
        .runtime
        .run(&component, "fib", "10", Some("fib-10".into()))
        .await
        .expect("run");
    assert_eq!(again, first, "the same record, not a second execution");
    assert_eq!(h.executions_of("fib-10", "fib_step"), executed);
    assert_eq!(h.replays_of("fib-10", "fib_step"), 0);
    // The component is pinned by digest in the database.
    let bytes = h
        .store
        .get_component(&first.app_version)
        .await
        .expect("get component");
    assert!(bytes.is_some_and(|b| !b.is_empty()));
}

#[tokio::test]
async fn workflow_out_of_memory_is_recovered_by_replay() {
    let Some((_cluster, _url, store)) = store("oom").await else {
        return;
    };
    let limited: RuntimeOptions = with_limits(
        InstanceLimits {
            memory_bytes: 32 << 20,
            ..InstanceLimits::default()
        },
        3,
    );
    let mut h = Harness::with_store(store, limited).await;
    let wf = h.run("memhog", "oom_once", "64").await;

    assert_eq!(wf.status, WorkflowStatus::Success, "{wf:?}");
    assert_eq!(wf.output.as_deref(), Some(r#""recovered""#));
    assert_eq!(wf.executions, 2, "one trap, one recovery");
    assert_eq!(wf.trap_class.as_deref(), Some("out_of_memory"));
    assert_eq!(
        h.executions_of(&wf.id, "small"),
        3,
        "small(1), small(2) once each, small(3) after recovery"
    );
    assert_eq!(h.replays_of(&wf.id, "small"), 2);
    assert_eq!(h.steps(&wf.id).await.len(), 3);
}

#[tokio::test]
async fn concurrent_claims_from_two_handles_never_share_a_workflow_and_keep_the_limit() {
    let Some((_cluster, url, first)) = store("claims").await else {
        return;
    };
    let second: Arc<dyn Store> = Arc::new(PostgresStore::open(&url).await.expect("second"));
    const TOTAL: usize = 60;
    const CONCURRENCY: u32 = 4;
    for i in 0..TOTAL {
        let new = NewWorkflow {
            priority: i32::from(i % 3 == 0),
            ..queued(&format!("q-{i:02}"), "work")
        };
        first.insert_workflow(&new).await.expect("enqueue");
    }

    let running = Arc::new(AtomicI64::new(0));
    let mut tasks = Vec::new();
    for worker in 0..6 {
        let store = if worker % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let running = running.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut idle = 0;
            while idle < 40 {
                let claim = QueueClaim {
                    queue: "work".to_owned(),
                    executor_id: format!("exec-{worker}"),
                    max: 2,
                    concurrency: Some(CONCURRENCY),
                    rate_limit: None,
                };
                let claimed = store.claim_queued(&claim).await.expect("claim");
                if claimed.is_empty() {
                    idle += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                idle = 0;
                let now = running.fetch_add(claimed.len() as i64, Ordering::SeqCst)
                    + claimed.len() as i64;
                assert!(now <= i64::from(CONCURRENCY), "{now} running at once");
                let depths = store.queue_depths().await.expect("depths");
                let pending = depths.iter().map(|d| d.pending).sum::<u64>();
                assert!(
                    pending <= u64::from(CONCURRENCY),
                    "{pending} PENDING at once"
                );
                for record in &claimed {
                    assert_eq!(record.status, WorkflowStatus::Pending);
                    assert_eq!(record.executions, 1);
                    assert_eq!(record.executor_id, format!("exec-{worker}"));
                    assert!(record.started_at.is_some());
                }
                tokio::task::yield_now().await;
                running.fetch_sub(claimed.len() as i64, Ordering::SeqCst);
                for record in claimed {
                    store
                        .finish_workflow(&record.id, &WorkflowEnd::Success("1".to_owned()))
                        .await
                        .expect("finish");
                    mine.push(record.id);
                }
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("claimer task"));
    }
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "a workflow was claimed twice");
    assert_eq!(all.len(), TOTAL, "every workflow was claimed");
    let counts = first.count_by_status().await.expect("counts");
    assert_eq!(counts, vec![(WorkflowStatus::Success, TOTAL as u64)]);

    // Dispatch order: lower priority value first, then FIFO.
    for i in 0..4 {
        first
            .insert_workflow(&NewWorkflow {
                priority: if i == 3 { -1 } else { 0 },
                ..queued(&format!("o-{i}"), "order")
            })
            .await
            .expect("enqueue");
    }
    let claim = QueueClaim {
        queue: "order".to_owned(),
        executor_id: "exec-x".to_owned(),
        max: 10,
        concurrency: None,
        rate_limit: Some(reprise::store::RateLimit {
            limit: 3,
            period_ms: 60_000,
        }),
    };
    let ids: Vec<_> = second
        .claim_queued(&claim)
        .await
        .expect("claim")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["o-3", "o-0", "o-1"], "priority, FIFO, rate limit");
    assert!(second.claim_queued(&claim).await.expect("claim").is_empty());
}

#[tokio::test]
async fn store_semantics_match_sqlite() {
    let Some((_cluster, _url, store)) = store("semantics").await else {
        return;
    };
    // Deduplication: a second active holder of the id is refused, a finished one frees it.
    let dedup = |id: &str| NewWorkflow {
        deduplication_id: Some("once".to_owned()),
        ..queued(id, "q")
    };
    assert!(
        store
            .insert_workflow(&dedup("d1"))
            .await
            .expect("d1")
            .created
    );
    let err = store.insert_workflow(&dedup("d2")).await.expect_err("dup");
    assert!(
        matches!(&err, StoreError::Duplicate { queue, deduplication_id }
            if queue == "q" && deduplication_id == "once"),
        "{err:?}"
    );
    // The same id again is the idempotent insert, not a duplicate.
    let again = store.insert_workflow(&dedup("d1")).await.expect("again");
    assert!(!again.created);
    store.cancel_workflow("d1").await.expect("cancel");
    assert!(
        store
            .insert_workflow(&dedup("d2"))
            .await
            .expect("d2")
            .created
    );
    // Resuming d1 would make two active holders.
    let err = store
        .resume_workflow("d1", "exec-1")
        .await
        .expect_err("dup");
    assert!(matches!(err, StoreError::Duplicate { .. }), "{err:?}");

    // begin_execution counts executions and keeps the first start time.
    let direct = NewWorkflow {
        queue_name: None,
        ..queued("w", "q")
    };
    let inserted = store.insert_workflow(&direct).await.expect("insert");
    assert_eq!(inserted.record.started_at, None);
    assert_eq!(
        store.begin_execution("w", "exec-1").await.expect("begin"),
        1
    );
    let started = store.get_workflow("w").await.expect("get").expect("row");
    assert_eq!(
        store.begin_execution("w", "exec-2").await.expect("begin"),
        2
    );
    let later = store.get_workflow("w").await.expect("get").expect("row");
    assert_eq!(later.started_at, started.started_at);
    assert_eq!(later.executor_id, "exec-2");
    assert!(matches!(
        store.begin_execution("ghost", "e").await,
        Err(StoreError::UnknownWorkflow(_))
    ));

    // Steps: a position is recorded once; a step of no workflow is refused.
    let step = |workflow_id: &str, function_id: u32| reprise::store::StepRecord {
        workflow_id: workflow_id.to_owned(),
        function_id,
        name: format!("s{function_id}"),
        output: Some(format!("{function_id}")),
        error: None,
        attempts: 1,
        started_at: 1,
        completed_at: 2,
    };
    for i in 0..3 {
        store.record_step(&step("w", i)).await.expect("step");
    }
    assert!(matches!(
        store.record_step(&step("w", 1)).await,
        Err(StoreError::StepAlreadyRecorded { function_id: 1, .. })
    ));
    assert!(matches!(
        store.record_step(&step("ghost", 0)).await,
        Err(StoreError::UnknownWorkflow(_))
    ));

    // The first ending wins.
    let done = store
        .finish_workflow("w", &WorkflowEnd::Error("boom".to_owned()))
        .await
        .expect("finish");
    assert_eq!(done.status, WorkflowStatus::Error);
    let late = store
        .finish_workflow("w", &WorkflowEnd::Success("1".to_owned()))
        .await
        .expect("finish again");
    assert_eq!(late, done);

    // Fork keeps the steps before `from_step`; resume makes an ERROR pending again.
    let fork = store.fork_workflow("w", "w2", 2).await.expect("fork");
    assert_eq!((fork.status, fork.executions), (WorkflowStatus::Pending, 0));
    assert_eq!(store.steps("w2").await.expect("steps").len(), 2);
    assert!(matches!(
        store.fork_workflow("w", "w2", 1).await,
        Err(StoreError::WorkflowExists(_))
    ));
    assert!(matches!(
        store.fork_workflow("ghost", "w3", 1).await,
        Err(StoreError::UnknownWorkflow(_))
    ));
    let resumed = store.resume_workflow("w", "exec-9").await.expect("resume");
    assert_eq!(
        (resumed.status, resumed.executions, resumed.error),
        (WorkflowStatus::Pending, 0, None)
    );
    store
        .finish_workflow("w", &WorkflowEnd::Success("1".to_owned()))
        .await
        .expect("finish");
    assert!(matches!(
        store.resume_workflow("w", "exec-9").await,
        Err(StoreError::NotResumable { .. })
    ));

    let asked: Vec<String> = ["w2", "ghost", "w"].map(str::to_owned).into();
    let ids: Vec<_> = store
        .workflow_statuses(&asked)
        .await
        .expect("statuses")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["w2", "w"]);
    let listed = store
        .list_workflows(&Default::default())
        .await
        .expect("list");
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[0].id, "w2", "newest first");
}
