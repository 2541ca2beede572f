//! What tracing costs a workflow: 10-step workflows run with telemetry off and exporting to a
//! loopback OTLP receiver, in alternating rounds (this machine's speed drifts between them).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use super::run_sequential;
use reprise_host::runtime::{Runtime, RuntimeOptions};
use reprise_host::telemetry::{OtlpTarget, Telemetry};

/// Rounds of each setting, interleaved.
const ROUNDS: u32 = 4;
/// Spans of one `count(10)` workflow: its root, one execution, ten steps.
const SPANS_PER_WORKFLOW: f64 = 12.0;

/// The tracing figures.
#[derive(Debug, Serialize)]
pub(super) struct TraceFigures {
    workflows: u32,
    /// Mean latency of a 10-step workflow, tracing off.
    off_us: f64,
    /// The same, exporting every span.
    on_us: f64,
    /// What one exported span adds to its workflow's latency.
    per_span_us: f64,
    /// Export requests the receiver got, and the bytes in them.
    export_requests: u64,
    export_bytes: u64,
}

/// A collector's traces endpoint that accepts and counts what it is sent.
async fn serve_receiver() -> anyhow::Result<(String, Arc<(AtomicU64, AtomicU64)>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let seen = counts.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: bytes::Bytes| {
            seen.0.fetch_add(1, Ordering::Relaxed);
            seen.1.fetch_add(body.len() as u64, Ordering::Relaxed);
            async {}
        }),
    );
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::warn!("bench OTLP receiver stopped: {err}");
        }
    });
    Ok((format!("http://{addr}/v1/traces"), counts))
}

async fn runtime(telemetry: Telemetry, dir: &std::path::Path) -> anyhow::Result<Runtime> {
    let name = format!("traces-{}.db", telemetry.is_on());
    let options = RuntimeOptions {
        telemetry,
        ..RuntimeOptions::default()
    };
    super::process_runtime(dir, &name, options).await
}

pub(super) async fn measure(bytes: &[u8], workflows: u32) -> anyhow::Result<TraceFigures> {
    let (url, counts) = serve_receiver().await?;
    let target = OtlpTarget {
        traces_url: url,
        service_name: "reprise-bench".into(),
    };
    let telemetry = Telemetry::start(Some(&target))?;
    let dir = tempfile::tempdir()?;
    let off = runtime(Telemetry::off(), dir.path()).await?;
    let on = runtime(telemetry.clone(), dir.path()).await?;
    let off_component = off.register(bytes).await?;
    let on_component = on.register(bytes).await?;
    let per_round = (workflows / ROUNDS).max(1);
    run_sequential(&off, &off_component, "count", "10", 20).await?;
    run_sequential(&on, &on_component, "count", "10", 20).await?;
    let (mut off_time, mut on_time) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..ROUNDS {
        off_time += run_sequential(&off, &off_component, "count", "10", per_round).await?;
        on_time += run_sequential(&on, &on_component, "count", "10", per_round).await?;
    }
    telemetry.shutdown().await;
    let runs = f64::from(per_round * ROUNDS);
    let (off_us, on_us) = (
        off_time.as_secs_f64() * 1e6 / runs,
        on_time.as_secs_f64() * 1e6 / runs,
    );
    let export_requests = counts.0.load(Ordering::Relaxed);
    anyhow::ensure!(export_requests > 0, "no spans reached the OTLP receiver");
    Ok(TraceFigures {
        workflows: per_round * ROUNDS,
        off_us,
        on_us,
        per_span_us: (on_us - off_us) / SPANS_PER_WORKFLOW,
        export_requests,
        export_bytes: counts.1.load(Ordering::Relaxed),
    })
}

pub(super) fn print(figures: &TraceFigures) {
    println!(
        "Traces: 10-step workflows, process durability ({} each way)",
        figures.workflows
    );
    println!(
        "  tracing off                          {:>9.1} µs",
        figures.off_us
    );
    println!(
        "  exporting over OTLP/HTTP             {:>9.1} µs   ({:.2} µs per span; {} requests, {} KiB)",
        figures.on_us,
        figures.per_span_us,
        figures.export_requests,
        figures.export_bytes / 1024
    );
}
