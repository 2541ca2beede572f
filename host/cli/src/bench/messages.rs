//! What waiting for a message costs: the round trip of a message to a workflow waiting in
//! `recv` (sent from this process, whose send wakes it at once, and from a second handle on
//! the database, as another process's send is found by the poll), and the host memory and
//! wake-up latency of many workflows waiting in `recv` at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{process_runtime, registered};

use super::parked::{cancel_all, park_many, percentile, resident_bytes, sqlite_bytes};
use reprise_host::runtime::{Mailbox, Runtime, RuntimeEvent, RuntimeOptions, StartRequest};
use reprise_store::{Durability, SqliteStore, Store, WorkflowStatus};

/// Round trips timed each way.
const ROUND_TRIPS: usize = 100;
/// Wake-ups of parked receivers timed.
const WAKE_SAMPLES: usize = 200;
/// Long enough that no recv times out while measured.
const LONG_MS: u64 = 3_600_000;

/// The message figures.
#[derive(Debug, Serialize)]
pub(super) struct MessageFigures {
    /// A message sent here to a workflow in `recv`, to the value the workflow wrote to its
    /// stream after receiving it being read here: the send's commit, the wake-up, the
    /// receive's commit, the stream write's commit, the reader's wake-up.
    round_trip_same_process_p50_us: f64,
    round_trip_same_process_p99_us: f64,
    /// The same with the message sent through another handle on the database, as another
    /// process would: found by the poll.
    round_trip_other_process_p50_us: f64,
    waiting_in_recv: usize,
    /// Host memory each workflow waiting in `recv` holds beyond its rows.
    host_per_waiting_bytes: f64,
    /// From a send to a parked receiver to that workflow's end (its replay, the receive and
    /// the ending's commit).
    send_to_finished_p50_us: f64,
    send_to_finished_p99_us: f64,
}

pub(super) async fn measure(bytes: &[u8], waiting: usize) -> anyhow::Result<MessageFigures> {
    let dir = tempfile::tempdir()?;
    let name = "messages.db";
    let runtime = process_runtime(dir.path(), name, RuntimeOptions::default()).await?;
    // A second handle on the same file, as another process would send through.
    let url = dir.path().join(name).to_string_lossy().into_owned();
    let component = registered(&runtime, bytes, &["relay", "wait_one"]).await?;
    let local = runtime.mailbox();
    let same = round_trips(&runtime, &component, &local, "relay-here").await?;
    let other_store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url, Durability::Process).await?);
    let other = Mailbox::new(other_store);
    let across = round_trips(&runtime, &component, &other, "relay-there").await?;

    let request = StartRequest::new("wait_one", LONG_MS.to_string());
    let warm_up = park_many(&runtime, &component, &request, 512, 1).await?;
    cancel_all(&runtime, &warm_up).await?;
    let (before, sqlite_before) = (resident_bytes()?, sqlite_bytes());
    let parked = park_many(&runtime, &component, &request, waiting, 1).await?;
    let (after, sqlite_after) = (resident_bytes()?, sqlite_bytes());
    let grown = after
        .saturating_sub(before)
        .saturating_sub(sqlite_after.saturating_sub(sqlite_before));
    let wakes = wake_ups(&runtime, &local, &parked[..WAKE_SAMPLES.min(parked.len())]).await?;
    cancel_all(&runtime, &parked).await?;
    Ok(MessageFigures {
        round_trip_same_process_p50_us: percentile(&same, 0.5),
        round_trip_same_process_p99_us: percentile(&same, 0.99),
        round_trip_other_process_p50_us: percentile(&across, 0.5),
        waiting_in_recv: waiting,
        host_per_waiting_bytes: grown as f64 / waiting.max(1) as f64,
        send_to_finished_p50_us: percentile(&wakes, 0.5),
        send_to_finished_p99_us: percentile(&wakes, 0.99),
    })
}

/// Sends numbers one at a time to a `relay` and times each until its echo is read from the
/// relay's stream.
async fn round_trips(
    runtime: &Runtime,
    component: &Arc<reprise_host::runtime::LoadedComponent>,
    sender: &Mailbox,
    id: &str,
) -> anyhow::Result<Vec<Duration>> {
    let request = StartRequest {
        id: Some(id.to_string()),
        ..StartRequest::new("relay", ROUND_TRIPS.to_string())
    };
    runtime.submit(component, request).await?;
    let reader = runtime.mailbox();
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for n in 0..ROUND_TRIPS {
        let sent = Instant::now();
        sender.send_message(id, "in", &n.to_string(), None).await?;
        let offset = n as u64;
        loop {
            let read = reader
                .read_stream(id, "out", offset, Duration::from_secs(30))
                .await?;
            if !read.entries.is_empty() {
                break;
            }
            anyhow::ensure!(!read.closed, "the relay ended early");
        }
        samples.push(sent.elapsed());
    }
    runtime.wait(id, Some(Duration::from_secs(30))).await?;
    Ok(samples)
}

/// Sends to parked receivers one at a time; for each, the time from the send to its end.
async fn wake_ups(
    runtime: &Runtime,
    sender: &Mailbox,
    ids: &[String],
) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(ids.len());
    for id in ids {
        let mut events = runtime.subscribe();
        let sent = Instant::now();
        sender.send_message(id, "in", "1", None).await?;
        loop {
            if let RuntimeEvent::WorkflowFinished {
                workflow_id,
                status,
            } = events.recv().await?
                && &workflow_id == id
            {
                anyhow::ensure!(
                    status == WorkflowStatus::Success,
                    "a receiver ended {status}"
                );
                samples.push(sent.elapsed());
                break;
            }
        }
    }
    Ok(samples)
}

pub(super) fn print(f: &MessageFigures) {
    println!("messages");
    println!(
        "  send → recv → stream read, here  {:>10.1} µs (p50), {:.1} µs (p99)",
        f.round_trip_same_process_p50_us, f.round_trip_same_process_p99_us
    );
    println!(
        "  the same, sent by another handle {:>10.1} µs (p50; found by the poll)",
        f.round_trip_other_process_p50_us
    );
    println!(
        "  host memory per workflow in recv {:>10.0} bytes   ({} waiting at once)",
        f.host_per_waiting_bytes, f.waiting_in_recv
    );
    println!(
        "  send to a parked recv → its end  {:>10.1} µs (p50), {:.1} µs (p99)",
        f.send_to_finished_p50_us, f.send_to_finished_p99_us
    );
}
