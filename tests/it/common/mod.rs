//! Shared test harness: real guests built by tests/support/build.rs, a real SQLite file per test, and
//! a log of what the runtime actually executed.
#![allow(dead_code)]

pub mod backend;
pub mod postgres;
pub mod raw;
pub mod server;
pub mod services;

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use reprise_host::runtime::InstanceOptions;
use reprise_host::store::{StepRecord, Store};
use reprise_host::{
    Durability, EngineOptions, InstanceLimits, LoadedComponent, Runtime, RuntimeEvent,
    RuntimeOptions, SqliteStore, WorkflowRecord,
};
use tokio::sync::broadcast;

/// Path of a guest component built by the test build script: its copy in the build's
/// `OUT_DIR`, which no test writes (tests that build guests do so in `guests/target`).
pub fn guest(name: &str) -> PathBuf {
    PathBuf::from(env!("REPRISE_GUEST_DIR")).join(format!("{name}.wasm"))
}

/// The `reprise` binary built by `cargo test --workspace` (next to this test's deps dir).
pub fn reprise_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let bin = dir.join(format!("reprise{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// A compiled-artifact cache shared by all tests, so each guest compiles once per test run.
pub fn engine_options() -> EngineOptions {
    EngineOptions {
        cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reprise-cache")),
        ..EngineOptions::default()
    }
}

/// A runtime on its own SQLite file, recording every event it emits.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub runtime: Runtime,
    pub store: Arc<dyn Store>,
    events: broadcast::Receiver<RuntimeEvent>,
    seen: Vec<RuntimeEvent>,
}

impl Harness {
    pub async fn new(options: RuntimeOptions) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::in_dir(dir, options).await
    }

    /// A runtime on the database file in `dir` (reopening one a previous harness used).
    pub async fn in_dir(dir: tempfile::TempDir, options: RuntimeOptions) -> Harness {
        let path = dir.path().join("reprise.db");
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&path.to_string_lossy(), Durability::Process)
                .await
                .expect("open sqlite"),
        );
        let runtime = Runtime::new(store.clone(), &engine_options(), options).expect("runtime");
        let events = runtime.subscribe();
        Harness {
            dir,
            runtime,
            store,
            events,
            seen: Vec::new(),
        }
    }

    /// A runtime on a store opened elsewhere (a Postgres database, say); `dir` is a fresh temp
    /// dir, unused by the store.
    pub async fn with_store(store: Arc<dyn Store>, options: RuntimeOptions) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime = Runtime::new(store.clone(), &engine_options(), options).expect("runtime");
        let events = runtime.subscribe();
        Harness {
            dir,
            runtime,
            store,
            events,
            seen: Vec::new(),
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("reprise.db")
    }

    pub async fn component(&self, name: &str) -> Arc<LoadedComponent> {
        let bytes = std::fs::read(guest(name)).expect("guest component built by build.rs");
        self.runtime
            .register(&bytes)
            .await
            .expect("register component")
    }

    /// Runs a workflow of a guest to its end.
    pub async fn run(&mut self, guest_name: &str, workflow: &str, input: &str) -> WorkflowRecord {
        let component = self.component(guest_name).await;
        self.runtime
            .run(&component, workflow, input, None)
            .await
            .expect("runtime error")
    }

    pub async fn steps(&self, workflow_id: &str) -> Vec<StepRecord> {
        self.store.steps(workflow_id).await.expect("steps")
    }

    /// Every event so far.
    pub fn events(&mut self) -> &[RuntimeEvent] {
        while let Ok(event) = self.events.try_recv() {
            self.seen.push(event);
        }
        &self.seen
    }

    /// How many times a step's code actually started (one per attempt) in a workflow.
    pub fn executions_of(&mut self, workflow_id: &str, step: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| matches!(e, RuntimeEvent::StepExecuting { workflow_id: w, name, .. } if w == workflow_id && name == step))
            .count()
    }

    /// How many times a step's recorded outcome was replayed instead of run.
    pub fn replays_of(&mut self, workflow_id: &str, step: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| matches!(e, RuntimeEvent::StepReplayed { workflow_id: w, name, .. } if w == workflow_id && name == step))
            .count()
    }
}

/// Options with a small recovery bound, as the experiments use.
pub fn options(max_recovery_attempts: u32) -> RuntimeOptions {
    with_limits(InstanceLimits::default(), max_recovery_attempts)
}

/// Options with these limits and recovery bound on the default instance.
pub fn with_limits(limits: InstanceLimits, max_recovery_attempts: u32) -> RuntimeOptions {
    let instance = InstanceOptions {
        limits,
        max_recovery_attempts,
        ..InstanceOptions::default()
    };
    RuntimeOptions::single("local", instance)
}

/// The function ids a `reprise` process's debug log says it executed and committed.
pub fn checkpointed_ids(log: &str) -> BTreeSet<u32> {
    log.lines()
        .filter(|l| l.contains("step checkpointed"))
        .filter_map(|l| l.split("function_id=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter_map(|id| id.parse().ok())
        .collect()
}

/// Reads a `reprise` process's debug log until it has checkpointed `count` steps named `step`;
/// returns what it read and how many it saw (fewer if the log ended first).
pub fn read_until_checkpoints(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    step: &str,
    count: usize,
) -> (String, usize) {
    let (mut log, mut seen) = (String::new(), 0);
    let wanted = format!("step={step}");
    for line in lines.by_ref() {
        let line = line.expect("read the process's stderr");
        log.push_str(&line);
        log.push('\n');
        if line.contains("step checkpointed") && line.contains(&wanted) {
            seen += 1;
            if seen == count {
                break;
            }
        }
    }
    (log, seen)
}

/// The lines of a child process's stderr.
pub fn stderr_lines(
    child: &mut std::process::Child,
) -> std::io::Lines<std::io::BufReader<std::process::ChildStderr>> {
    std::io::BufReader::new(child.stderr.take().expect("stderr piped")).lines()
}

/// Waits (at most 5 s) until workflow `id` has recorded a `recv`'s deadline: it waits for a
/// message. Its steps then, or the store's error.
pub async fn waiting_in_recv(
    store: &dyn Store,
    id: &str,
) -> Result<Vec<StepRecord>, reprise_host::store::StoreError> {
    server::poll_until(
        || store.steps(id),
        |s| {
            s.as_ref()
                .is_ok_and(|s| s.iter().any(|s| s.name == "reprise.recv-deadline"))
        },
    )
    .await
}
