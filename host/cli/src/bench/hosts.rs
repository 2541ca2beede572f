//! One and several executors on one Postgres (`reprise bench --postgres URL`): an empty
//! workflow's latency and the per-step checkpoint on Postgres, queue throughput with
//! 1, 2 and 3 executors sharing the database, enqueue-to-start latency when another executor
//! dispatches, and the time from an executor's last lease renewal to its last workflow
//! adopted and finished elsewhere. The executors are runtimes in this process, each with its
//! own connection pool, dispatchers, lease and adoption: what crosses between them goes
//! through the database, as between hosts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use reprise_host::engine::EngineOptions;
use reprise_host::node::queue::QueueOptions;
use reprise_host::node::queue::start_dispatchers;
use reprise_host::runtime::{
    InstanceOptions, LoadedComponent, Runtime, RuntimeOptions, StartRequest,
};
use reprise_store::{NewWorkflow, Store, WorkflowStatus, now_ms, open_store};

/// Sequential runs per latency figure.
const SEQUENTIAL: u32 = 200;

/// The lease the adoption figure runs with.
const LEASE: Duration = Duration::from_secs(1);

/// What the many-executors run measured.
#[derive(Debug, Serialize)]
pub struct Figures {
    /// One executor running workflows one at a time on Postgres: an empty workflow from start
    /// to end, and what each step adds (a 10-step workflow against a 1-step one).
    empty_workflow_latency_us: f64,
    per_step_overhead_us: f64,
    /// One single-row INSERT committed alone: the floor both are compared with.
    raw_commit_us: f64,
    one_step_workflows: usize,
    /// What the one-executor queue run cost Postgres per workflow.
    postgres_per_workflow: super::pg_floor::PerWorkflow,
    /// One-step workflows per second through one queue, with 1, 2 and 3 executors.
    queue_workflows_per_sec: Vec<f64>,
    /// From the enqueue's commit on one executor to the start on another, mean and p99 (ms).
    cross_host_enqueue_to_start_ms: f64,
    cross_host_enqueue_to_start_p99_ms: f64,
    /// Workflows a dead executor owned.
    adopted_workflows: usize,
    lease_ms: u64,
    /// From its last lease renewal to its last workflow adopted, and to all of them ended.
    death_to_last_adopted_ms: f64,
    death_to_all_ended_ms: f64,
}

/// One executor: a runtime on its own pool, with its queue dispatchers.
struct Host {
    runtime: Runtime,
    stop: CancellationToken,
}

async fn host(url: &str, id: &str, bytes: &[u8]) -> anyhow::Result<(Host, Arc<LoadedComponent>)> {
    let store = open_store(url, reprise_store::Durability::Synced).await?;
    let options = RuntimeOptions::single(id, InstanceOptions::default());
    let runtime = Runtime::new(store, &EngineOptions::default(), options)?;
    let component = runtime.register(bytes).await?;
    let stop = CancellationToken::new();
    let queues = BTreeMap::from([(
        "bench".to_string(),
        QueueOptions {
            worker_concurrency: Some(64),
            ..QueueOptions::default()
        },
    )]);
    drop(start_dispatchers(
        &runtime.dispatch(),
        &queues,
        stop.clone(),
    ));
    Ok((Host { runtime, stop }, component))
}

/// Deletes every ended workflow, so each figure starts from an empty queue.
async fn clear(store: &dyn Store) -> anyhow::Result<()> {
    while store.delete_ended(now_ms() + 1, 1_000).await? > 0 {}
    Ok(())
}

/// Waits until `count` workflows are in `status`, checking every 5 ms.
async fn until_count(store: &dyn Store, status: WorkflowStatus, count: u64) -> anyhow::Result<()> {
    loop {
        let counts = store.count_by_status().await?;
        let have = counts
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n);
        if have >= count {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub async fn measure(bytes: &[u8], url: &str, total: usize) -> anyhow::Result<Figures> {
    let (submitter, component) = host(url, "bench-submitter", bytes).await?;
    // The submitter dispatches nothing: it only enqueues, as a client would.
    submitter.stop.cancel();
    let store = submitter.runtime.store().clone();
    clear(&*store).await?;

    // Latency on Postgres, as the SQLite figures measure it: sequential, after a warm-up.
    let sequential = |workflow: &'static str, input: &'static str, n: u32| {
        super::run_sequential(&submitter.runtime, &component, workflow, input, n)
    };
    sequential("empty", "null", 10).await?;
    let empty = sequential("empty", "null", SEQUENTIAL).await?;
    let one = sequential("count", "1", SEQUENTIAL).await?;
    let ten = sequential("count", "10", SEQUENTIAL).await?;
    let empty_us = super::micros(empty) / f64::from(SEQUENTIAL);
    let per_step_us = super::per_step_us(ten, one, SEQUENTIAL);
    clear(&*store).await?;
    let raw_commit = super::pg_floor::raw_commit_us(url, SEQUENTIAL).await?;
    let stats = super::pg_floor::pool(url).await?;
    let mut per_workflow = None;

    let mut rates = Vec::new();
    for hosts in 1..=3 {
        let mut running = Vec::new();
        for n in 0..hosts {
            running.push(host(url, &format!("bench-{n}"), bytes).await?.0);
        }
        let before = super::pg_floor::counters(&stats).await?;
        let start = Instant::now();
        let mut submitters = super::enqueue_one_step(&submitter.runtime, &component, total, 16);
        while let Some(done) = submitters.join_next().await {
            done??;
        }
        until_count(&*store, WorkflowStatus::Success, total as u64).await?;
        rates.push(total as f64 / start.elapsed().as_secs_f64());
        for host in running {
            host.stop.cancel();
            host.runtime.drain(Duration::from_secs(10)).await;
        }
        if per_workflow.is_none() {
            tokio::time::sleep(super::pg_floor::STATS_SETTLE).await;
            let after = super::pg_floor::counters(&stats).await?;
            per_workflow = Some(before.per_workflow(after, total));
        }
        clear(&*store).await?;
    }

    // Cross-host latency: enqueued on the submitter, started by the one executor that runs.
    let (dispatcher, _) = host(url, "bench-dispatcher", bytes).await?;
    let mut samples = Vec::new();
    for _ in 0..200 {
        let request = StartRequest {
            queue: Some("bench".into()),
            ..StartRequest::new("count", "1")
        };
        let id = submitter
            .runtime
            .submit(&component, request)
            .await?
            .record
            .id;
        let record = loop {
            let record = store.get_workflow(&id).await?;
            if let Some(record) = record.filter(|r| r.started_at.is_some()) {
                break record;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        let started = record.started_at.unwrap_or(record.created_at);
        samples.push((started - record.created_at) as f64);
    }
    dispatcher.stop.cancel();
    dispatcher.runtime.drain(Duration::from_secs(10)).await;
    clear(&*store).await?;
    samples.sort_by(f64::total_cmp);
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    let p99 = samples[samples.len() * 99 / 100];

    // Death: an executor owns PENDING workflows and stops renewing its lease.
    let dead = 300;
    let lease_ms = LEASE.as_millis() as i64;
    store.renew_lease("bench-dead", now_ms(), lease_ms).await?;
    let died = Instant::now();
    for i in 0..dead {
        let new = NewWorkflow {
            begin_execution: true,
            ..NewWorkflow::new(
                format!("orphan-{i}"),
                "count",
                "1",
                "bench-dead",
                component.digest.clone(),
            )
        };
        store.insert_workflow(&new).await?;
    }
    let mut survivors = Vec::new();
    for n in 0..2 {
        let (survivor, _) = host(url, &format!("bench-survivor-{n}"), bytes).await?;
        let lease = reprise_host::node::lease::take(
            survivor.runtime.dispatch(),
            LEASE,
            survivor.stop.clone(),
        )
        .await?;
        let adoption = reprise_host::node::adoption::spawn(
            survivor.runtime.dispatch(),
            LEASE / 3,
            survivor.stop.clone(),
        );
        survivors.push((survivor, lease, adoption));
    }
    loop {
        let executors = store.executors(None).await?;
        if executors
            .iter()
            .any(|e| e.executor_id == "bench-dead" && e.pending == 0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let adopted = died.elapsed();
    until_count(&*store, WorkflowStatus::Success, dead as u64).await?;
    let ended = died.elapsed();
    for (survivor, lease, adoption) in survivors {
        survivor.stop.cancel();
        let _ = adoption.await;
        lease.abort();
        survivor.runtime.drain(Duration::from_secs(10)).await;
    }
    clear(&*store).await?;
    Ok(Figures {
        empty_workflow_latency_us: empty_us,
        per_step_overhead_us: per_step_us,
        raw_commit_us: raw_commit,
        one_step_workflows: total,
        postgres_per_workflow: per_workflow
            .ok_or_else(|| anyhow::anyhow!("the one-executor run did not happen"))?,
        queue_workflows_per_sec: rates,
        cross_host_enqueue_to_start_ms: mean,
        cross_host_enqueue_to_start_p99_ms: p99,
        adopted_workflows: dead,
        lease_ms: LEASE.as_millis() as u64,
        death_to_last_adopted_ms: adopted.as_secs_f64() * 1e3,
        death_to_all_ended_ms: ended.as_secs_f64() * 1e3,
    })
}

pub fn print(f: &Figures) {
    println!("\n== several executors on one Postgres ==");
    println!(
        "empty workflow, start to finish:   {:>9.0} µs; per-step checkpoint {:.0} µs",
        f.empty_workflow_latency_us, f.per_step_overhead_us
    );
    println!(
        "raw commit (floor):                {:>9.0} µs (one single-row INSERT committed alone)",
        f.raw_commit_us
    );
    let pg = &f.postgres_per_workflow;
    println!(
        "Postgres per queued workflow:      {:>9.1} transactions, {:.1} tuples fetched, {:.0} WAL bytes; {:.0}% of workflow_status updates HOT",
        pg.transactions,
        pg.tuples_fetched,
        pg.wal_bytes,
        pg.hot_update_share * 100.0
    );
    for (n, rate) in f.queue_workflows_per_sec.iter().enumerate() {
        println!(
            "queue throughput, {} executor(s):   {rate:>9.0} one-step workflows/s ({} workflows)",
            n + 1,
            f.one_step_workflows
        );
    }
    println!(
        "cross-host enqueue to start:       {:>9.2} ms mean, {:.2} ms p99",
        f.cross_host_enqueue_to_start_ms, f.cross_host_enqueue_to_start_p99_ms
    );
    println!(
        "death to last adopted ({} wf):    {:>9.0} ms (lease {} ms); all ended after {:.0} ms",
        f.adopted_workflows, f.death_to_last_adopted_ms, f.lease_ms, f.death_to_all_ended_ms
    );
}
