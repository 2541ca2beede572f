//! What checking new code costs: `upgrade-check` of many workflows in flight, each with a
//! history of steps and a wait, and `replay` of one of them.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{process_runtime, registered};

use super::parked::{cancel_all, park_many, percentile};
use reprise_host::runtime::replay::check::CheckFilter;
use reprise_host::runtime::{RuntimeOptions, StartRequest};

/// Recorded steps before each workflow's wait.
const STEPS: u32 = 5;
/// Replays of one workflow timed.
const REPLAYS: usize = 200;

/// The version figures.
#[derive(Debug, Serialize)]
pub(super) struct VersionFigures {
    workflows_in_flight: usize,
    /// Positions each one's history holds: its steps and its wait's deadline.
    positions_each: u32,
    /// `upgrade-check` of all of them, on this command's worker threads.
    upgrade_check_secs: f64,
    upgrade_check_workflows_per_sec: f64,
    /// `replay` of one of them (its history read, a fresh instance, the replay): median.
    replay_one_p50_us: f64,
}

pub(super) async fn measure(bytes: &[u8], count: usize) -> anyhow::Result<VersionFigures> {
    let dir = tempfile::tempdir()?;
    let runtime = process_runtime(dir.path(), "versions.db", RuntimeOptions::default()).await?;
    let component = registered(&runtime, bytes, &["ticks_then_wait"]).await?;
    let request = StartRequest::new("ticks_then_wait", STEPS.to_string());
    let ids = park_many(&runtime, &component, &request, count, 1).await?;

    let started = Instant::now();
    let report = runtime
        .upgrade_check(component.clone(), &CheckFilter::default())
        .await?;
    let check = started.elapsed();
    anyhow::ensure!(
        report.checked == count && report.all_clean(),
        "upgrade-check of the same code found {} of {} clean",
        report.clean,
        report.checked
    );
    let mut replays: Vec<Duration> = Vec::with_capacity(REPLAYS);
    let one = ids.first().cloned().unwrap_or_default();
    for _ in 0..REPLAYS {
        let started = Instant::now();
        let replayed = runtime.replay(&one, None, None).await?;
        replays.push(started.elapsed());
        anyhow::ensure!(
            replayed.replay.verdict.is_clean(),
            "the replay was not clean"
        );
    }
    cancel_all(&runtime, &ids).await?;
    Ok(VersionFigures {
        workflows_in_flight: count,
        positions_each: STEPS + 1,
        upgrade_check_secs: check.as_secs_f64(),
        upgrade_check_workflows_per_sec: count as f64 / check.as_secs_f64().max(1e-9),
        replay_one_p50_us: percentile(&replays, 0.5),
    })
}

pub(super) fn print(f: &VersionFigures) {
    println!(
        "changing code ({} workflows in flight, {} positions each)",
        f.workflows_in_flight, f.positions_each
    );
    println!(
        "  upgrade-check of them all     {:>10.2} s  ({:.0} workflows/s)",
        f.upgrade_check_secs, f.upgrade_check_workflows_per_sec
    );
    println!(
        "  replay of one (median)        {:>10.0} µs",
        f.replay_one_p50_us
    );
}
