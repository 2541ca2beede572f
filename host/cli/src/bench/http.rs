//! What an HTTP call from a step costs: GETs to a local server made by a step through
//! `wasi:http`, against the same GETs made by native Rust (reqwest), in one run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{process_runtime, registered};

use reprise_host::grants::Grants;
use reprise_host::runtime::{InstanceOptions, RuntimeOptions};
use reprise_store::WorkflowStatus;

/// The HTTP figures.
#[derive(Debug, Serialize)]
pub(super) struct HttpFigures {
    requests: u32,
    /// Mean time of one GET made by a step (inside one step making them all).
    step_get_us: f64,
    /// Mean time of one GET by reqwest with a new connection each, as the step makes them.
    native_get_new_connection_us: f64,
    /// Mean time of one GET by reqwest reusing its connection.
    native_get_pooled_us: f64,
    /// `step_get_us` over `native_get_new_connection_us`.
    ratio_same_connections: f64,
    /// `step_get_us` over `native_get_pooled_us`.
    ratio_pooled: f64,
}

/// A loopback server answering `GET /ping` with a short body.
async fn serve_ping() -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route("/ping", axum::routing::get(|| async { "pong" }));
    let server = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::warn!("bench HTTP server stopped: {err}");
        }
    });
    Ok((format!("http://{addr}/ping"), server))
}

pub(super) async fn measure(bytes: &[u8], requests: u32) -> anyhow::Result<HttpFigures> {
    let (url, server) = serve_ping().await?;
    let dir = tempfile::tempdir()?;
    let grants = Grants {
        http: vec!["127.0.0.1:*".parse()?],
        ..Grants::default()
    };
    let instance = InstanceOptions {
        grants: Arc::new(grants),
        ..InstanceOptions::default()
    };
    let options = RuntimeOptions::single("bench", instance);
    let runtime = process_runtime(dir.path(), "http.db", options).await?;
    let component = registered(&runtime, bytes, &["http_gets"]).await?;
    let input = serde_json::to_string(&(url.as_str(), requests))?;
    let warm = serde_json::to_string(&(url.as_str(), 20))?;
    runtime.run(&component, "http_gets", &warm, None).await?;
    let started = Instant::now();
    let record = runtime.run(&component, "http_gets", &input, None).await?;
    let step = started.elapsed();
    anyhow::ensure!(
        record.status == WorkflowStatus::Success,
        "the http_gets workflow failed: {:?}",
        record.error
    );

    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let pooled = reqwest::Client::new();
    let native_fresh = native_gets(&fresh, &url, requests).await?;
    let native_pooled = native_gets(&pooled, &url, requests).await?;
    server.abort();

    let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(requests.max(1));
    let (step_us, fresh_us, pooled_us) = (per(step), per(native_fresh), per(native_pooled));
    Ok(HttpFigures {
        requests,
        step_get_us: step_us,
        native_get_new_connection_us: fresh_us,
        native_get_pooled_us: pooled_us,
        ratio_same_connections: step_us / fresh_us,
        ratio_pooled: step_us / pooled_us,
    })
}

async fn native_gets(client: &reqwest::Client, url: &str, n: u32) -> anyhow::Result<Duration> {
    for _ in 0..20 {
        client.get(url).send().await?.bytes().await?;
    }
    let started = Instant::now();
    for _ in 0..n {
        let response = client.get(url).send().await?;
        anyhow::ensure!(
            response.status().is_success(),
            "GET {url}: {}",
            response.status()
        );
        response.bytes().await?;
    }
    Ok(started.elapsed())
}

pub(super) fn print(figures: &HttpFigures) {
    println!(
        "HTTP GET to a loopback server ({} requests)",
        figures.requests
    );
    println!(
        "  from a step (wasi:http)              {:>9.1} µs",
        figures.step_get_us
    );
    println!(
        "  native reqwest, new connection each  {:>9.1} µs   (step / native = {:.2}×)",
        figures.native_get_new_connection_us, figures.ratio_same_connections
    );
    println!(
        "  native reqwest, pooled connection    {:>9.1} µs   (step / native = {:.2}×)",
        figures.native_get_pooled_us, figures.ratio_pooled
    );
}
