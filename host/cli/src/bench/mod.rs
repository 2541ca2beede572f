//! `reprise bench`: the figures the project promises, measured on the embedded database at
//! each durability level — empty-workflow latency and throughput, per-step checkpoint
//! overhead, instantiation time, and one crash-recovery replay of a 100-step workflow — and
//! what parked workflows cost ([`parked`]), what an HTTP call from a step costs ([`http`]),
//! what waiting for messages costs ([`messages`]) and what checking new code costs
//! ([`versions`]).

mod floor;
mod hosts;
mod http;
mod messages;
mod parked;
mod pg_floor;
mod sustained;
mod traces;
mod versions;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::ThreadArgs;
use super::component::component_bytes;
use super::progress::Progress;
use reprise_host::engine::EngineOptions;
use reprise_host::node::queue::QueueOptions;
use reprise_host::node::queue::start_dispatchers;
use reprise_host::runtime::{LoadedComponent, Runtime, RuntimeEvent, RuntimeOptions, StartRequest};
use reprise_store::{Durability, SqliteStore, StepRecord, Store, WorkflowStatus, now_ms};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A component defining `empty()` and `count(n)` with n `tick` steps (guests/fib does).
    #[arg(default_value = "guests/fib")]
    component: PathBuf,
    /// `synced`, `process`, or `both`.
    #[arg(long = "level", default_value = "both")]
    level: String,
    /// Sequential runs per latency figure.
    #[arg(long, default_value_t = 200)]
    iterations: u32,
    /// Workflows in flight for the throughput figure.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// One-step workflows pushed through a queue for the queue-throughput figure.
    #[arg(long, default_value_t = 10_000)]
    queued: usize,
    /// Workflows parked at once for the parked-memory figure (0 skips the parked figures).
    #[arg(long, default_value_t = 10_000)]
    parked: usize,
    /// One-step workflows started and awaited in five rounds for the memory-under-load figure
    /// (0, the default, skips it).
    #[arg(long, default_value_t = 0)]
    sustained: usize,
    /// GETs a step makes to a loopback server, timed against native reqwest (0 skips them).
    #[arg(long, default_value_t = 2_000)]
    http: u32,
    /// Workflows waiting in `recv` at once for the message figures (0 skips them).
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// 10-step workflows timed with tracing off and exporting over OTLP (0 skips them).
    #[arg(long, default_value_t = 2_000)]
    traces: u32,
    /// Workflows in flight (5 steps and a wait each) checked by `upgrade-check` and replayed
    /// (0 skips them).
    #[arg(long, default_value_t = 10_000)]
    upgrade_check: usize,
    /// A Postgres database (emptied first) for the many-executors figures: queue throughput
    /// with 1, 2 and 3 executors, cross-host enqueue-to-start latency, adoption time.
    #[arg(long)]
    postgres: Option<String>,
    /// One-step workflows per many-executors throughput run.
    #[arg(long, default_value_t = 3_000)]
    hosts_workflows: usize,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pub(super) threads: ThreadArgs,
}

/// One durability level's figures.
#[derive(Debug, Serialize)]
struct Figures {
    durability: String,
    instantiate_us: f64,
    empty_workflow_latency_us: f64,
    empty_workflows_per_sec_sequential: f64,
    empty_workflows_per_sec_concurrent: f64,
    ten_step_workflow_latency_us: f64,
    /// What each step adds: a 10-step workflow against a 1-step one (see [`per_step_us`]).
    per_step_overhead_us: f64,
    /// One single-row INSERT + COMMIT through SQLite's C API, same pragmas and disk: the
    /// floor the per-step figure is compared with.
    raw_commit_us: f64,
    replay_100_steps_ms: f64,
    commits_per_concurrent_workflow: f64,
    queued_workflows: usize,
    queue_workers: usize,
    queue_workflows_per_sec: f64,
    enqueue_to_start_latency_us: f64,
}

pub async fn bench(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let bytes = component_bytes(&args.component)?;
    let levels: Vec<Durability> = match args.level.as_str() {
        "both" => vec![Durability::Synced, Durability::Process],
        other => vec![other.parse().map_err(|e: String| anyhow::anyhow!(e))?],
    };
    let mut all = Vec::new();
    for level in levels {
        let figures = measure(&bytes, level, args).await?;
        if !args.json {
            print_figures(&figures);
        }
        all.push(figures);
    }
    let parked = if args.parked > 0 {
        let figures = parked::measure(&bytes, args.parked).await?;
        if !args.json {
            parked::print(&figures);
        }
        Some(figures)
    } else {
        None
    };
    let sustained = if args.sustained > 0 {
        let figures = sustained::measure(&bytes, args.sustained).await?;
        if !args.json {
            sustained::print(&figures);
        }
        Some(figures)
    } else {
        None
    };
    let http = if args.http > 0 {
        let figures = http::measure(&bytes, args.http).await?;
        if !args.json {
            http::print(&figures);
        }
        Some(figures)
    } else {
        None
    };
    let messages = if args.messages > 0 {
        let figures = messages::measure(&bytes, args.messages).await?;
        if !args.json {
            messages::print(&figures);
        }
        Some(figures)
    } else {
        None
    };
    let traces = if args.traces > 0 {
        let figures = traces::measure(&bytes, args.traces).await?;
        if !args.json {
            traces::print(&figures);
        }
        Some(figures)
    } else {
        None
    };
    let versions = if args.upgrade_check > 0 {
        let figures = versions::measure(&bytes, args.upgrade_check).await?;
        if !args.json {
            versions::print(&figures);
        }
        Some(figures)
    } else {
        None
    };
    let hosts = match &args.postgres {
        Some(url) => {
            let figures = hosts::measure(&bytes, url, args.hosts_workflows).await?;
            if !args.json {
                hosts::print(&figures);
            }
            Some(figures)
        }
        None => None,
    };
    if args.json {
        let report = serde_json::json!({
            "levels": all, "parked": parked, "http": http, "messages": messages, "traces": traces,
            "hosts": hosts, "versions": versions, "sustained": sustained,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(ExitCode::SUCCESS)
}

async fn measure(
    bytes: &[u8],
    durability: Durability,
    args: &BenchArgs,
) -> anyhow::Result<Figures> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.db");
    let sqlite = Arc::new(SqliteStore::open(&path.to_string_lossy(), durability).await?);
    let store: Arc<dyn Store> = sqlite.clone();
    let runtime = Runtime::new(
        store.clone(),
        &EngineOptions::default(),
        RuntimeOptions::default(),
    )?;
    let component = registered(&runtime, bytes, &["empty", "count"]).await?;
    let iterations = args.iterations.max(1);

    let instantiate = time_instantiation(&runtime, &component, 1_000).await?;

    // Warm up caches and the database file.
    run_sequential(&runtime, &component, "empty", "null", 10).await?;
    let empty = run_sequential(&runtime, &component, "empty", "null", iterations).await?;
    let one = run_sequential(&runtime, &component, "count", "1", iterations).await?;
    let ten = run_sequential(&runtime, &component, "count", "10", iterations).await?;

    let concurrent_count = (iterations as usize * 5).max(args.concurrency);
    let commits_before = sqlite.commits();
    let concurrent =
        run_concurrent(&runtime, &component, concurrent_count, args.concurrency).await?;
    let commits = sqlite.commits() - commits_before;

    let raw_commit = floor::raw_commit_us(dir.path(), durability, iterations * 5)?;
    let replay = time_replay(&runtime, &component, 100, 5).await?;
    let (queue_rate, enqueue_to_start) =
        measure_queue(&runtime, &component, args.queued, args.concurrency).await?;

    let empty_us = micros(empty) / iterations as f64;
    let ten_us = micros(ten) / iterations as f64;
    Ok(Figures {
        durability: durability.to_string(),
        instantiate_us: instantiate,
        empty_workflow_latency_us: empty_us,
        empty_workflows_per_sec_sequential: 1e6 / empty_us,
        empty_workflows_per_sec_concurrent: concurrent_count as f64 / concurrent.as_secs_f64(),
        ten_step_workflow_latency_us: ten_us,
        per_step_overhead_us: per_step_us(ten, one, iterations),
        raw_commit_us: raw_commit,
        replay_100_steps_ms: replay.as_secs_f64() * 1e3,
        commits_per_concurrent_workflow: commits as f64 / concurrent_count as f64,
        queued_workflows: args.queued,
        queue_workers: args.concurrency,
        queue_workflows_per_sec: queue_rate,
        enqueue_to_start_latency_us: micros(enqueue_to_start),
    })
}

/// A runtime with `options` on a fresh SQLite file `name` in `dir`, at `process` durability:
/// what every phase after the durability levels measures on.
pub(super) async fn process_runtime(
    dir: &Path,
    name: &str,
    options: RuntimeOptions,
) -> anyhow::Result<Runtime> {
    let path = dir.join(name);
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&path.to_string_lossy(), Durability::Process).await?);
    Ok(Runtime::new(store, &EngineOptions::default(), options)?)
}

/// Registers the bench component on `runtime`; it must define each of `workflows`.
pub(super) async fn registered(
    runtime: &Runtime,
    bytes: &[u8],
    workflows: &[&str],
) -> anyhow::Result<Arc<LoadedComponent>> {
    let component = runtime.register(bytes).await?;
    for workflow in workflows {
        anyhow::ensure!(
            component.has_workflow(workflow),
            "the bench component must define workflow {workflow:?} (guests/fib does)"
        );
    }
    Ok(component)
}

pub(super) fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// What each step adds, from `n` runs each of a 10-step and a 1-step workflow. Not against an
/// empty one: a workflow that makes no durable call is written once, ended, while one with
/// steps writes its row at its first step, a commit that is no step's.
pub(super) fn per_step_us(ten: Duration, one: Duration, n: u32) -> f64 {
    (micros(ten) - micros(one)) / f64::from(n.max(1)) / 9.0
}

/// Mean microseconds to create a store and instantiate the component.
async fn time_instantiation(
    runtime: &Runtime,
    component: &LoadedComponent,
    n: u32,
) -> anyhow::Result<f64> {
    let engine = runtime.engine();
    let start = Instant::now();
    for _ in 0..n {
        engine.instantiate_for_listing(component).await?;
    }
    Ok(micros(start.elapsed()) / n as f64)
}

pub(super) async fn run_sequential(
    runtime: &Runtime,
    component: &LoadedComponent,
    workflow: &str,
    input: &str,
    n: u32,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    for _ in 0..n {
        let record = runtime.run(component, workflow, input, None).await?;
        anyhow::ensure!(
            record.status == WorkflowStatus::Success,
            "bench workflow failed: {:?}",
            record.error
        );
    }
    Ok(start.elapsed())
}

async fn run_concurrent(
    runtime: &Runtime,
    component: &Arc<LoadedComponent>,
    total: usize,
    concurrency: usize,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut started = 0;
    let mut finished = 0;
    while finished < total {
        while started < total && tasks.len() < concurrency.max(1) {
            let (runtime, component) = (runtime.clone(), component.clone());
            tasks.spawn(async move { runtime.run(&component, "empty", "null", None).await });
            started += 1;
        }
        if let Some(joined) = tasks.join_next().await {
            let record = joined??;
            anyhow::ensure!(
                record.status == WorkflowStatus::Success,
                "bench workflow failed"
            );
            finished += 1;
        }
    }
    Ok(start.elapsed())
}

/// Mean time to recover a workflow whose `steps` steps were committed before a crash: the
/// instance replays every recorded outcome and finishes.
async fn time_replay(
    runtime: &Runtime,
    component: &LoadedComponent,
    steps: u32,
    repeats: u32,
) -> anyhow::Result<Duration> {
    let mut total = Duration::ZERO;
    for _ in 0..repeats {
        let inserted = runtime
            .start(component, "count", &steps.to_string(), None)
            .await?;
        let id = inserted.record.id;
        runtime
            .store()
            .begin_execution(&id, &runtime.options().executor_id, inserted.record.epoch)
            .await?;
        for i in 0..steps {
            let now = now_ms();
            runtime
                .store()
                .record_step(&StepRecord {
                    workflow_id: id.clone(),
                    function_id: i,
                    name: "tick".into(),
                    output: Some(i.to_string()),
                    error: None,
                    attempts: 1,
                    started_at: now,
                    completed_at: now,
                    epoch: None,
                    committed_epoch: None,
                    args: None,
                })
                .await?;
        }
        let start = Instant::now();
        let record = runtime.drive(&id).await?;
        total += start.elapsed();
        anyhow::ensure!(
            record.status == WorkflowStatus::Success,
            "replayed workflow failed: {:?}",
            record.error
        );
    }
    Ok(total / repeats)
}

/// Pushes `total` one-step workflows through a queue with `concurrency` workers: returns the
/// end-to-end rate (enqueue of the first to completion of the last) and the mean latency from
/// an enqueue on an idle queue to the start of its execution.
async fn measure_queue(
    runtime: &Runtime,
    component: &Arc<LoadedComponent>,
    total: usize,
    concurrency: usize,
) -> anyhow::Result<(f64, Duration)> {
    let queues = BTreeMap::from([(
        "bench".to_string(),
        QueueOptions {
            worker_concurrency: Some(u32::try_from(concurrency).unwrap_or(u32::MAX)),
            ..QueueOptions::default()
        },
    )]);
    let stop = CancellationToken::new();
    let dispatchers = start_dispatchers(&runtime.dispatch(), &queues, stop.clone());
    let enqueue = |input: &'static str| StartRequest {
        queue: Some("bench".into()),
        ..StartRequest::new("count", input)
    };

    // Idle-queue latency: one at a time, from the enqueue call to the execution's start.
    let mut events = runtime.subscribe();
    let mut latency = Duration::ZERO;
    let samples = 100;
    for _ in 0..samples {
        let start = Instant::now();
        let id = runtime.submit(component, enqueue("1")).await?.record.id;
        loop {
            match events.recv().await? {
                RuntimeEvent::ExecutionStarted { workflow_id, .. } if workflow_id == id => break,
                _ => {}
            }
        }
        latency += start.elapsed();
        runtime.wait(&id, None).await?;
    }

    // Throughput: enqueue everything from several submitters, count completions.
    let mut events = runtime.subscribe();
    let start = Instant::now();
    // Enqueue from as many concurrent submitters as there are workers, as many clients would.
    let mut submitters = enqueue_one_step(runtime, component, total, concurrency);
    let mut finished = 0;
    let mut progress = Progress::new("queued", total as u64);
    while finished < total {
        match events.recv().await {
            Ok(RuntimeEvent::WorkflowFinished { status, .. }) => {
                anyhow::ensure!(
                    status == WorkflowStatus::Success,
                    "a queued bench workflow ended {status}"
                );
                finished += 1;
                progress.inc();
            }
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                anyhow::bail!("bench lost {n} events; raise the event buffer")
            }
            Err(err) => return Err(err.into()),
        }
    }
    let elapsed = start.elapsed();
    while let Some(joined) = submitters.join_next().await {
        joined??;
    }
    stop.cancel();
    for dispatcher in dispatchers {
        dispatcher.await?;
    }
    Ok((total as f64 / elapsed.as_secs_f64(), latency / samples))
}

/// Enqueues `total` one-step workflows on the queue `bench` from `tasks` concurrent
/// submitters, as many clients would.
fn enqueue_one_step(
    runtime: &Runtime,
    component: &Arc<LoadedComponent>,
    total: usize,
    tasks: usize,
) -> tokio::task::JoinSet<Result<(), reprise_host::runtime::RuntimeError>> {
    let mut submitters = tokio::task::JoinSet::new();
    let tasks = tasks.max(1);
    let per_task = total.div_ceil(tasks);
    for task in 0..tasks {
        let (runtime, component) = (runtime.clone(), component.clone());
        let count = per_task.min(total.saturating_sub(task * per_task));
        submitters.spawn(async move {
            for _ in 0..count {
                let request = StartRequest {
                    queue: Some("bench".into()),
                    ..StartRequest::new("count", "1")
                };
                runtime.submit(&component, request).await?;
            }
            Ok(())
        });
    }
    submitters
}

fn print_figures(f: &Figures) {
    println!("durability: {}", f.durability);
    println!(
        "  instantiate                      {:>10.1} µs",
        f.instantiate_us
    );
    println!(
        "  empty workflow latency           {:>10.1} µs",
        f.empty_workflow_latency_us
    );
    println!(
        "  empty workflows/s (sequential)   {:>10.0}",
        f.empty_workflows_per_sec_sequential
    );
    println!(
        "  empty workflows/s (concurrent)   {:>10.0}",
        f.empty_workflows_per_sec_concurrent
    );
    println!(
        "  commits per concurrent workflow  {:>10.2}",
        f.commits_per_concurrent_workflow
    );
    println!(
        "  10-step workflow latency         {:>10.1} µs",
        f.ten_step_workflow_latency_us
    );
    println!(
        "  per-step overhead                {:>10.1} µs  ({:.1}× the raw commit)",
        f.per_step_overhead_us,
        f.per_step_overhead_us / f.raw_commit_us
    );
    println!(
        "  raw commit (floor)               {:>10.1} µs  (one INSERT + COMMIT, C API)",
        f.raw_commit_us
    );
    println!(
        "  recovery replay, 100 steps       {:>10.2} ms",
        f.replay_100_steps_ms
    );
    println!(
        "  queue: one-step workflows/s      {:>10.0}   ({} through a queue of {} workers)",
        f.queue_workflows_per_sec, f.queued_workflows, f.queue_workers
    );
    println!(
        "  queue: enqueue-to-start latency  {:>10.1} µs",
        f.enqueue_to_start_latency_us
    );
}
