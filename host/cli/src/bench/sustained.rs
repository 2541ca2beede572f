//! Memory under sustained load (`--sustained N`): N one-step workflows started and awaited (as
//! `GET /workflows/{id}/result` awaits them) in five rounds, the ended ones deleted after each
//! round as retention would; the process's resident memory after each round shows whether
//! anything stays behind per workflow.

use std::time::Duration;

use serde::Serialize;

use super::{process_runtime, registered};

use super::parked::resident_bytes;
use reprise_host::runtime::{RuntimeOptions, StartRequest};
use reprise_store::{WorkflowStatus, now_ms};

const ROUNDS: usize = 5;
/// Workflows started and awaited at once.
const AT_ONCE: usize = 64;

#[derive(Debug, Serialize)]
pub(super) struct SustainedFigures {
    workflows: usize,
    /// Resident memory after each round, after the allocator handed back its free pages.
    rss_after_round_bytes: Vec<u64>,
    /// Growth from the end of the first round (caches warm) to the end of the last, per
    /// 100,000 workflows.
    growth_per_100k_bytes: f64,
}

pub(super) async fn measure(bytes: &[u8], total: usize) -> anyhow::Result<SustainedFigures> {
    let dir = tempfile::tempdir()?;
    let runtime = process_runtime(dir.path(), "sustained.db", RuntimeOptions::default()).await?;
    let component = registered(&runtime, bytes, &["count"]).await?;
    let store = runtime.store();
    let per_round = total.div_ceil(ROUNDS);
    let mut rss = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..AT_ONCE {
            let (runtime, component) = (runtime.clone(), component.clone());
            let count = per_round / AT_ONCE + usize::from(task < per_round % AT_ONCE);
            tasks.spawn(async move {
                for _ in 0..count {
                    let started = runtime
                        .submit(&component, StartRequest::new("count", "1"))
                        .await?;
                    let ended = runtime.wait(&started.record.id, None).await?;
                    anyhow::ensure!(
                        ended.is_some_and(|w| w.status == WorkflowStatus::Success),
                        "a sustained-load workflow did not succeed"
                    );
                }
                Ok(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        while store.delete_ended(now_ms() + 1, 1_000).await? > 0 {}
        tokio::time::sleep(Duration::from_millis(200)).await;
        rss.push(resident_bytes()?);
    }
    let grown = rss.last().copied().unwrap_or(0) as f64 - rss.first().copied().unwrap_or(0) as f64;
    let after_first = (per_round * (ROUNDS - 1)).max(1) as f64;
    Ok(SustainedFigures {
        workflows: per_round * ROUNDS,
        rss_after_round_bytes: rss,
        growth_per_100k_bytes: grown / after_first * 100_000.0,
    })
}

pub(super) fn print(f: &SustainedFigures) {
    println!("sustained load");
    let rounds: Vec<String> = f
        .rss_after_round_bytes
        .iter()
        .map(|b| format!("{:.1}", *b as f64 / (1 << 20) as f64))
        .collect();
    println!(
        "  resident memory after each round {:>10} MiB   ({} workflows started and awaited in {ROUNDS} rounds)",
        rounds.join(", "),
        f.workflows
    );
    println!(
        "  growth per 100,000 workflows     {:>10.0} bytes",
        f.growth_per_100k_bytes
    );
}
