//! Several `reprise serve` processes on one Postgres: a host killed mid-run has its work
//! adopted by the others within its lease and a little more, with no committed step run again
//! and the queue's global limit kept; a host paused past its lease comes back to find its
//! writes refused and goes on serving; a host restarted under the id of one whose work was
//! adopted does not run that work again.

use crate::common;
use crate::guests::CHAOS;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::guest;
use common::server::Server;
use reprise_client::StartOptions;
use reprise_host::Durability;
use reprise_host::store::{Store, open_store};
use serde_json::Value;

/// Guest logs, the commit log and adoption, as JSON lines.
const LOG: &str = "warn,guest=info,reprise=info,reprise_host::runtime::execution::durable=debug";
/// The queue's global concurrency in the kill test.
const GLOBAL_LIMIT: u64 = 30;

fn host_config(url: &str, executor_id: &str) -> String {
    format!(
        r#"
database = "{url}"
executor_id = "{executor_id}"
lease = "1s"
log_format = "json"

[server]
token = "secret"
grace_period = "1s"

[components]
chaos = "{chaos}"

[queues.relay]
concurrency = {GLOBAL_LIMIT}
worker_concurrency = 16

[queues.tenants]
partitioned = true
concurrency = 2
"#,
        chaos = guest(CHAOS).display(),
    )
}

/// Starts a host named `executor_id` on the database at `url`, in `dir` (shared, so the
/// component compiles once).
fn host(dir: &std::path::Path, url: &str, executor_id: &str) -> Server {
    Server::start_logging(dir, &host_config(url, executor_id), "127.0.0.1:0", LOG)
}

/// What a host's log says it did: the step executions its guests logged ("tick i"), the steps
/// it committed, and how many workflows it adopted.
#[derive(Default)]
struct Seen {
    executed: BTreeMap<(String, u32), u32>,
    committed: BTreeSet<(String, u32)>,
    adopted: u64,
    refused: u64,
}

fn seen(log: &str) -> Seen {
    let mut seen = Seen::default();
    for line in log.lines() {
        let Ok(entry) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let fields = &entry;
        let message = fields["message"].as_str().unwrap_or_default();
        let workflow = fields["workflow_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if entry["target"] == "guest" {
            if let Some(i) = message.strip_prefix("tick ").and_then(|i| i.parse().ok()) {
                *seen.executed.entry((workflow, i)).or_default() += 1;
            }
        } else if message == "step checkpointed" {
            let position = fields["function_id"].as_u64().unwrap_or(u64::MAX) as u32;
            seen.committed.insert((workflow, position));
        } else if message.starts_with("adopted the PENDING workflows") {
            seen.adopted += fields["count"].as_u64().unwrap_or(0);
        } else if message.contains("was taken over by another execution") {
            seen.refused += 1;
        }
    }
    seen
}

async fn store(url: &str) -> Arc<dyn Store> {
    open_store(url, Durability::Synced).await.expect("open")
}

async fn successes(store: &dyn Store) -> u64 {
    let counts = store.count_by_status().await.expect("counts");
    counts
        .iter()
        .filter(|(status, _)| *status == reprise_host::WorkflowStatus::Success)
        .map(|(_, n)| *n)
        .sum()
}

/// Waits (up to `limit`) until `probe` holds, checking every 20 ms; panics naming `what`.
async fn await_until<F, Fut>(what: &str, limit: Duration, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !probe().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The PENDING workflows `executor_id` owns, as the executors table counts them.
async fn owned(store: &dyn Store, executor_id: &str) -> u64 {
    let executors = store.executors(None).await.expect("executors");
    executors
        .iter()
        .find(|e| e.executor_id == executor_id)
        .map_or(0, |e| e.pending)
}

/// Enqueues `relay(ms)` as `{prefix}-{i}` for i in 0..count, 32 at a time.
async fn enqueue(server: &Server, prefix: &str, count: usize, ms: u64, queue: Option<&str>) {
    enqueue_in(server, prefix, count, ms, queue, None).await;
}

/// [`enqueue`] in partition `partition` of the queue.
async fn enqueue_in(
    server: &Server,
    prefix: &str,
    count: usize,
    ms: u64,
    queue: Option<&str>,
    partition: Option<&str>,
) {
    let client = Arc::new(server.client());
    let mut ids: Vec<usize> = (0..count).collect();
    while !ids.is_empty() {
        let batch: Vec<_> = ids.drain(..ids.len().min(32)).collect();
        let starts = batch.into_iter().map(|i| {
            let client = client.clone();
            let options = StartOptions {
                id: Some(format!("{prefix}-{i}")),
                queue: queue.map(str::to_string),
                partition_key: partition.map(str::to_string),
                ..StartOptions::default()
            };
            async move {
                client
                    .start_with("relay", &ms, &options)
                    .await
                    .expect("start relay");
            }
        });
        futures_util::future::join_all(starts).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_hosts_work_is_adopted_with_no_committed_step_run_twice() {
    let url = common::postgres::database("many_hosts_kill").await;
    let dir = tempfile::tempdir().expect("dir");
    let mut hosts: Vec<Server> = ["host-a", "host-b", "host-c"]
        .iter()
        .map(|id| host(dir.path(), &url, id))
        .collect();
    let db = store(&url).await;

    // The queue's global limit, watched the whole time from the database.
    let most = Arc::new(AtomicU64::new(0));
    let watching = {
        let (db, most) = (db.clone(), most.clone());
        tokio::spawn(async move {
            loop {
                let depths = db.queue_depths().await.expect("depths");
                let running = depths.iter().find(|d| d.queue == "relay");
                let pending = running.map_or(0, |d| d.pending);
                most.fetch_max(pending, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    enqueue(&hosts[0], "relay", 1_000, 5, Some("relay")).await;
    // host-c dies mid-run, with workflows of its own between their steps, and never returns.
    await_until(
        "host-c to commit 100 steps",
        Duration::from_secs(60),
        || async { seen(&hosts[2].log()).committed.len() >= 100 },
    )
    .await;
    let owned_at_death = owned(&*db, "host-c").await;
    assert_eq!(hosts[2].signal_and_wait("KILL"), None);
    let died = Instant::now();
    assert!(owned_at_death > 0, "host-c owned nothing when it died");

    await_until("host-c's work adopted", Duration::from_secs(10), || async {
        owned(&*db, "host-c").await == 0
    })
    .await;
    let adopted_after = died.elapsed();
    await_until("all 1,000 SUCCESS", Duration::from_secs(120), || async {
        successes(&*db).await == 1_000
    })
    .await;
    watching.abort();

    // Within the 1 s lease, a third of it to notice, and a few seconds at most on a busy
    // machine (here it takes about 1.5 s).
    assert!(
        adopted_after < Duration::from_secs(4),
        "adoption took {adopted_after:?}"
    );
    let most = most.load(Ordering::Relaxed);
    assert!(
        most <= GLOBAL_LIMIT,
        "{most} ran at once, over the limit of {GLOBAL_LIMIT}"
    );
    let (a, b, c) = (
        seen(&hosts[0].log()),
        seen(&hosts[1].log()),
        seen(&hosts[2].log()),
    );
    assert!(
        a.adopted + b.adopted > 0,
        "the survivors logged no adoption"
    );
    // Every step committed exactly once, and none host-c committed ran again elsewhere; the
    // survivors never crashed, so what they ran they committed, once.
    for i in 0..1_000 {
        let id = format!("relay-{i}");
        let steps = db.steps(&id).await.expect("steps");
        let positions: Vec<u32> = steps.iter().map(|s| s.function_id).collect();
        assert_eq!(positions, [0, 1, 2, 3, 4], "{id}");
        for position in 0..5 {
            let key = (id.clone(), position);
            let survivors = a.executed.get(&key).copied().unwrap_or(0)
                + b.executed.get(&key).copied().unwrap_or(0);
            assert!(survivors <= 1, "{id} step {position} ran {survivors} times");
            if c.committed.contains(&key) {
                assert_eq!(
                    survivors, 0,
                    "{id} step {position} was committed by host-c and ran again"
                );
            }
        }
    }
    drop(hosts.pop());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_host_finds_its_adopted_work_fenced_and_carries_on() {
    let url = common::postgres::database("many_hosts_zombie").await;
    let dir = tempfile::tempdir().expect("dir");
    let survivor = host(dir.path(), &url, "host-a");
    let mut zombie = host(dir.path(), &url, "host-z");
    let db = store(&url).await;

    // Started on host-z itself (no queue): six workflows of five 400 ms steps.
    enqueue(&zombie, "slow", 6, 400, None).await;
    await_until(
        "host-z to commit a step of each",
        Duration::from_secs(30),
        || async {
            let committed = seen(&zombie.log()).committed;
            (0..6).all(|i| committed.contains(&(format!("slow-{i}"), 0)))
        },
    )
    .await;
    signal(&zombie, "STOP");
    let before = seen(&zombie.log()).committed;
    await_until(
        "host-a to adopt host-z's work",
        Duration::from_secs(10),
        || async { owned(&*db, "host-z").await == 0 },
    )
    .await;
    // host-z wakes while host-a runs what it adopted: host-z's steps in flight end and try
    // to commit under the epoch it no longer has.
    signal(&zombie, "CONT");
    await_until("all six SUCCESS", Duration::from_secs(30), || async {
        successes(&*db).await == 6
    })
    .await;
    await_until(
        "host-z to say it was fenced",
        Duration::from_secs(10),
        || async { seen(&zombie.log()).refused > 0 },
    )
    .await;
    let after = seen(&zombie.log());
    assert_eq!(
        after.committed, before,
        "host-z committed steps after its work was adopted"
    );
    let survivor_log = survivor.log();
    assert!(
        !survivor_log.contains("already recorded"),
        "a step was committed twice:\n{survivor_log}"
    );
    for i in 0..6 {
        let steps = db.steps(&format!("slow-{i}")).await.expect("steps");
        assert_eq!(steps.len(), 5);
    }

    // It goes on serving: a new workflow runs on it to the end.
    let handle = zombie
        .client()
        .start_with(
            "relay",
            &1u64,
            &StartOptions {
                id: Some("after-pause".into()),
                ..StartOptions::default()
            },
        )
        .await
        .expect("start on the woken host");
    let sum: u32 = handle.result().await.expect("result");
    assert_eq!(sum, 10);
    let record = db
        .get_workflow("after-pause")
        .await
        .expect("get")
        .expect("row");
    assert_eq!(record.executor_id, "host-z");
    zombie.signal_and_wait("KILL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_restarted_under_an_adopted_id_does_not_run_that_work_again() {
    let url = common::postgres::database("many_hosts_restart").await;
    let dir = tempfile::tempdir().expect("dir");
    let _survivor = host(dir.path(), &url, "host-a");
    let mut dead = host(dir.path(), &url, "host-b");
    let db = store(&url).await;

    enqueue(&dead, "left", 4, 300, None).await;
    await_until(
        "host-b to commit a step of each",
        Duration::from_secs(30),
        || async {
            let committed = seen(&dead.log()).committed;
            (0..4).all(|i| committed.contains(&(format!("left-{i}"), 0)))
        },
    )
    .await;
    assert_eq!(dead.signal_and_wait("KILL"), None);
    await_until(
        "host-a to adopt host-b's work",
        Duration::from_secs(10),
        || async { owned(&*db, "host-b").await == 0 },
    )
    .await;

    // host-b comes back under its old id while host-a still runs what it adopted.
    let back = host(dir.path(), &url, "host-b");
    await_until("all four SUCCESS", Duration::from_secs(30), || async {
        successes(&*db).await == 4
    })
    .await;
    let log = back.log();
    assert!(
        seen(&log).executed.is_empty(),
        "the restarted host ran adopted work:\n{log}"
    );
    for i in 0..4 {
        let record = db
            .get_workflow(&format!("left-{i}"))
            .await
            .expect("get")
            .expect("row");
        assert_eq!(record.executor_id, "host-a");
        assert_eq!(record.output.as_deref(), Some("10"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_partition_does_not_hold_up_another() {
    let url = common::postgres::database("many_hosts_partitions").await;
    let dir = tempfile::tempdir().expect("dir");
    let hosts = [
        host(dir.path(), &url, "host-a"),
        host(dir.path(), &url, "host-b"),
    ];
    let db = store(&url).await;

    // 40 workflows of a quarter second flood one tenant's partition, two per partition at a
    // time; then a calm tenant enqueues two.
    enqueue_in(&hosts[0], "flood", 40, 50, Some("tenants"), Some("flood")).await;
    enqueue_in(&hosts[1], "calm", 2, 50, Some("tenants"), Some("calm")).await;
    await_until(
        "the calm tenant's two to end",
        Duration::from_secs(30),
        || async {
            let calm = ["calm-0", "calm-1"].map(|id| db.get_workflow(id));
            let ended = futures_util::future::join_all(calm).await;
            ended.iter().all(|w| {
                w.as_ref()
                    .ok()
                    .and_then(|w| w.as_ref())
                    .is_some_and(|w| w.status == reprise_host::WorkflowStatus::Success)
            })
        },
    )
    .await;
    let flood_done = successes(&*db).await - 2;
    assert!(
        flood_done <= 10,
        "the calm tenant waited for {flood_done} of the flood's workflows"
    );
    let running = db
        .list_workflows(&reprise_host::store::WorkflowFilter::default())
        .await
        .expect("list");
    let flood_running = running
        .iter()
        .filter(|w| {
            w.partition_key.as_deref() == Some("flood")
                && w.status == reprise_host::WorkflowStatus::Pending
        })
        .count();
    assert!(
        flood_running <= 2,
        "{flood_running} of the flood ran at once"
    );
}

/// Sends `SIG{name}` to a host without waiting for it to exit.
fn signal(server: &Server, name: &str) {
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -s {name} {}", server.child.id())])
        .status()
        .expect("sh");
    assert!(status.success(), "could not send SIG{name}");
}

/// The spin between `gapped`'s two steps: a few seconds of workflow code, long enough for the
/// test to pause the host inside it.
const GAP_SPIN: u64 = 3_000_000_000;

/// A host configured with an instance whose fuel lets `gapped` spin that long.
fn gap_host(dir: &std::path::Path, url: &str, executor_id: &str) -> Server {
    let config = format!(
        "{}\n[instances.slow]\ncomponent = \"chaos\"\nfuel = 1000000000000\n",
        host_config(url, executor_id)
    );
    Server::start_logging(dir, &config, "127.0.0.1:0", LOG)
}

/// Whether a JSON log line is the guest saying `message` (not replayed) for `workflow_id`.
fn guest_said(log: &str, workflow_id: &str, message: &str) -> bool {
    log.lines().any(|line| {
        serde_json::from_str::<Value>(line).is_ok_and(|entry| {
            entry["target"] == "guest"
                && entry["workflow_id"] == workflow_id
                && entry["message"] == message
        })
    })
}

/// A host paused after committing a step and before it begins the next wakes to find its
/// workflow adopted and finished elsewhere: it runs no further step. Before, it began the
/// next step at once and only that step's checkpoint was refused, so the step's effect
/// happened twice; now it halts on its lapsed lease, re-reads the epoch and stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_host_that_wakes_after_adoption_runs_no_further_step() {
    let url = common::postgres::database("many_hosts_gap").await;
    let dir = tempfile::tempdir().expect("dir");
    let survivor = gap_host(dir.path(), &url, "host-a");
    let mut zombie = gap_host(dir.path(), &url, "host-z");
    let db = store(&url).await;

    zombie
        .client()
        .start_with(
            "gapped",
            &GAP_SPIN,
            &StartOptions {
                id: Some("gap-1".into()),
                instance: Some("slow".into()),
                ..StartOptions::default()
            },
        )
        .await
        .expect("start on host-z");
    await_until(
        "host-z to commit the first step and enter the gap",
        Duration::from_secs(30),
        || async { guest_said(&zombie.log(), "gap-1", "gap") },
    )
    .await;
    signal(&zombie, "STOP");
    await_until(
        "host-a to adopt the workflow and finish it",
        Duration::from_secs(90),
        || async {
            db.get_workflow("gap-1")
                .await
                .ok()
                .flatten()
                .is_some_and(|w| w.status == reprise_host::WorkflowStatus::Success)
        },
    )
    .await;
    signal(&zombie, "CONT");
    await_until(
        "host-z to stop the execution it held",
        Duration::from_secs(60),
        || async { seen(&zombie.log()).refused > 0 },
    )
    .await;

    let (zombie_log, survivor_log) = (zombie.log(), survivor.log());
    let second = ("gap-1".to_string(), 1);
    assert_eq!(
        seen(&zombie_log).executed.get(&second),
        None,
        "host-z ran the second step after its workflow was adopted:\n{zombie_log}"
    );
    assert_eq!(
        seen(&survivor_log).executed.get(&second),
        Some(&1),
        "host-a runs the second step once:\n{survivor_log}"
    );
    let record = db.get_workflow("gap-1").await.expect("get").expect("row");
    assert_eq!(record.output.as_deref(), Some("1"));
    assert_eq!(record.executor_id, "host-a");
    assert_eq!(db.steps("gap-1").await.expect("steps").len(), 2);
    zombie.signal_and_wait("KILL");
}
