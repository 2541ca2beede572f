//! What a parked workflow costs: the host memory each of many parked workflows holds beyond
//! its database rows, the CPU a serving host spends while they all wait, and how soon a
//! workflow whose wait ended runs again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{process_runtime, registered};

use reprise_host::node::{Node, NodeOptions};
use reprise_host::runtime::{LoadedComponent, Runtime, RuntimeEvent, RuntimeOptions, StartRequest};
use reprise_store::{WorkflowFilter, WorkflowStatus};

/// Long enough that nothing wakes while the memory is measured.
const LONG_NAP_MS: u64 = 600_000;
/// Just past the parking threshold: the workflow parks, then wakes soon.
const SHORT_NAP_MS: u64 = 150;
/// Starts in flight at once while filling the parking lot.
const STARTS_AT_ONCE: usize = 256;
/// Sequential wake-ups timed.
const WAKE_SAMPLES: usize = 50;
/// How long the idle host's CPU is measured, once everything has parked.
const IDLE_WINDOW: Duration = Duration::from_secs(3);

/// The parked figures.
#[derive(Debug, Serialize)]
pub(super) struct ParkedFigures {
    parked_workflows: usize,
    /// Growth of the host's resident memory while they were parked, per workflow, with the
    /// allocator's free pages handed back first.
    rss_per_parked_bytes: f64,
    /// The same without what SQLite's own allocations grew by (its page cache of the new
    /// rows): what the host holds per parked workflow beyond its database rows.
    host_per_parked_bytes: f64,
    /// From a wait's end to the resumed execution starting its guest (a place in the pool,
    /// the history read, an instance): median and 99th percentile.
    wake_to_running_p50_us: f64,
    wake_to_running_p99_us: f64,
    /// From a wait's end to the workflow's end: the above plus the replay of its two recorded
    /// calls, one more recorded call and the ending's commit.
    wake_to_finished_p50_us: f64,
    /// The CPU the process used while they all waited, with a serving node's loops running
    /// (lease, queue and delayed-start polls, the cancel watcher), in % of one core.
    idle_cpu_percent: f64,
}

pub(super) async fn measure(bytes: &[u8], count: usize) -> anyhow::Result<ParkedFigures> {
    let dir = tempfile::tempdir()?;
    let runtime = process_runtime(dir.path(), "parked.db", RuntimeOptions::default()).await?;
    let component = registered(&runtime, bytes, &["nap", "wait_one", "await_nap"]).await?;
    // Started before anything parks, so its recovery finds nothing of this run to drive.
    let node = Node::start(runtime.clone(), NodeOptions::default()).await?;

    // A first round leaves what any round allocates and keeps (caches, the allocator's
    // arenas) out of the figure.
    let nap = StartRequest::new("nap", LONG_NAP_MS.to_string());
    let warm_up = park_many(&runtime, &component, &nap, STARTS_AT_ONCE * 2, 1).await?;
    cancel_all(&runtime, &warm_up).await?;
    let (before, sqlite_before) = (resident_bytes()?, sqlite_bytes());
    // Every way of waiting at once, a third each: sleeps, `recv`s, and parents awaiting a
    // child that sleeps (two parked workflows per start).
    let (recv, child) = (
        StartRequest::new("wait_one", LONG_NAP_MS.to_string()),
        StartRequest::new("await_nap", LONG_NAP_MS.to_string()),
    );
    let mut parked = park_many(&runtime, &component, &nap, count / 3, 1).await?;
    parked.extend(park_many(&runtime, &component, &recv, count / 3, 1).await?);
    let parents = count.saturating_sub(parked.len()) / 2;
    parked.extend(park_many(&runtime, &component, &child, parents, 2).await?);
    let count = runtime.instance_usage().parked;
    let (after, sqlite_after) = (resident_bytes()?, sqlite_bytes());
    eprintln!("{count} parked; measuring the idle host's CPU");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = cpu_time()?;
    tokio::time::sleep(IDLE_WINDOW).await;
    let idle_cpu = (cpu_time()? - idle).as_secs_f64() / IDLE_WINDOW.as_secs_f64();
    // The parents' children too: a cancel does not reach a workflow's children.
    let waiting = WorkflowFilter {
        status: Some(WorkflowStatus::Pending),
        ..WorkflowFilter::default()
    };
    let everyone: Vec<String> = runtime
        .store()
        .list_workflows(&waiting)
        .await?
        .into_iter()
        .map(|w| w.id)
        .collect();
    anyhow::ensure!(
        everyone.len() >= parked.len(),
        "parked workflows went missing"
    );
    cancel_all(&runtime, &everyone).await?;
    let grown = after.saturating_sub(before);
    let sqlite_grown = sqlite_after.saturating_sub(sqlite_before);

    let (running, finished) = time_wake_ups(&runtime, &component).await?;
    node.shutdown(Duration::from_secs(1)).await;
    Ok(ParkedFigures {
        parked_workflows: count,
        rss_per_parked_bytes: grown as f64 / count.max(1) as f64,
        host_per_parked_bytes: grown.saturating_sub(sqlite_grown) as f64 / count.max(1) as f64,
        wake_to_running_p50_us: percentile(&running, 0.5),
        wake_to_running_p99_us: percentile(&running, 0.99),
        wake_to_finished_p50_us: percentile(&finished, 0.5),
        idle_cpu_percent: idle_cpu * 100.0,
    })
}

/// Starts `count` workflows as `request` asks (each under an id of its own) that wait long,
/// and returns their ids once every one is parked, with the `parked_each` workflows each start
/// parks (2 for a parent whose child waits too).
pub(super) async fn park_many(
    runtime: &Runtime,
    component: &Arc<LoadedComponent>,
    request: &StartRequest,
    count: usize,
    parked_each: usize,
) -> anyhow::Result<Vec<String>> {
    let already = runtime.instance_usage().parked;
    let mut ids = Vec::with_capacity(count);
    let mut starts = tokio::task::JoinSet::new();
    for _ in 0..count {
        if starts.len() >= STARTS_AT_ONCE
            && let Some(joined) = starts.join_next().await
        {
            ids.push(joined??);
        }
        // Started workflows queue for an instance; keep that queue short, as a steady stream
        // of starts would, rather than measure the high-water mark of one burst.
        while runtime.in_flight() >= STARTS_AT_ONCE {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (runtime, component, request) = (runtime.clone(), component.clone(), request.clone());
        starts.spawn(async move {
            let inserted = runtime.submit(&component, request).await?;
            Ok::<_, anyhow::Error>(inserted.record.id)
        });
    }
    while let Some(joined) = starts.join_next().await {
        ids.push(joined??);
    }
    let expected = already + count * parked_each;
    while runtime.instance_usage().parked < expected {
        anyhow::ensure!(
            runtime.in_flight() > 0 || runtime.instance_usage().parked >= expected,
            "some bench workflows ended instead of parking"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(ids)
}

pub(super) async fn cancel_all(runtime: &Runtime, ids: &[String]) -> anyhow::Result<()> {
    for id in ids {
        runtime.cancel(id).await?;
    }
    while runtime.instance_usage().parked > 0 || runtime.in_flight() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// Runs short naps one at a time; for each, the time from its wait's end to its guest running
/// again and to its end.
async fn time_wake_ups(
    runtime: &Runtime,
    component: &Arc<LoadedComponent>,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let (mut running, mut finished) = (Vec::new(), Vec::new());
    for _ in 0..WAKE_SAMPLES {
        let mut events = runtime.subscribe();
        let request = StartRequest::new("nap", SHORT_NAP_MS.to_string());
        let id = runtime.submit(component, request).await?.record.id;
        let mut woke = None;
        loop {
            match events.recv().await? {
                RuntimeEvent::Unparked { workflow_id } if workflow_id == id => {
                    woke = Some(Instant::now());
                }
                RuntimeEvent::ExecutionStarted { workflow_id, .. } if workflow_id == id => {
                    if let Some(woke) = woke {
                        running.push(woke.elapsed());
                    }
                }
                RuntimeEvent::WorkflowFinished {
                    workflow_id,
                    status,
                } if workflow_id == id => {
                    anyhow::ensure!(status == WorkflowStatus::Success, "a nap ended {status}");
                    let woke = woke.ok_or_else(|| anyhow::anyhow!("a nap never parked"))?;
                    finished.push(woke.elapsed());
                    break;
                }
                _ => {}
            }
        }
    }
    Ok((running, finished))
}

pub(super) fn percentile(samples: &[Duration], q: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let Some(last) = sorted.len().checked_sub(1) else {
        return 0.0;
    };
    let index = ((last as f64) * q).round() as usize;
    sorted[index.min(last)].as_secs_f64() * 1e6
}

/// The CPU time (user and system) this process has used.
fn cpu_time() -> anyhow::Result<Duration> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let done = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    anyhow::ensure!(done == 0, "getrusage: {}", std::io::Error::last_os_error());
    // SAFETY: getrusage succeeded, so the struct is initialised.
    let usage = unsafe { usage.assume_init() };
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    Ok(time(usage.ru_utime) + time(usage.ru_stime))
}

/// Bytes SQLite has allocated, in this process, for every connection.
pub(super) fn sqlite_bytes() -> u64 {
    // SAFETY: a read of SQLite's global memory counter, safe from any thread.
    let used = unsafe { libsqlite3_sys::sqlite3_memory_used() };
    u64::try_from(used).unwrap_or(0)
}

/// The process's resident memory, from `/proc/self/status`, after the allocator handed its
/// free pages back: what is live, not what a burst once needed.
pub(super) fn resident_bytes() -> anyhow::Result<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the kernel; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/self/status"))?;
    Ok(kib * 1024)
}

pub(super) fn print(f: &ParkedFigures) {
    println!("parked workflows");
    println!(
        "  host memory per parked workflow  {:>10.0} bytes   ({} parked at once; {:.0} with SQLite's cache)",
        f.host_per_parked_bytes, f.parked_workflows, f.rss_per_parked_bytes
    );
    println!(
        "  idle host's CPU while they wait  {:>10.2} % of a core",
        f.idle_cpu_percent
    );
    println!(
        "  wait's end to guest running      {:>10.1} µs (p50), {:.1} µs (p99)",
        f.wake_to_running_p50_us, f.wake_to_running_p99_us
    );
    println!(
        "  wait's end to workflow's end     {:>10.1} µs (p50)",
        f.wake_to_finished_p50_us
    );
}
