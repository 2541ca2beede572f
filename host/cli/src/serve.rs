//! `reprise serve`: a long-running host. Recovers this executor's PENDING workflows, serves its
//! queues and the admin API, and on SIGINT/SIGTERM stops taking work, lets running workflows
//! finish within the grace period, and exits 0; anything unfinished resumes at the next start.
//! Every version of a component that workflows in flight run on stays loaded; on SIGHUP the
//! configured components are read again, and a changed one serves new starts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::ThreadArgs;
use super::component::component_bytes;
use crate::config::{Config, LogFormat};
use reprise_host::node::lease::DEFAULT_LEASE;
use reprise_host::node::serving::Serving;
use reprise_host::node::{Node, NodeOptions};
use reprise_host::runtime::Runtime;
use reprise_host::server::{AllowedHosts, BodyLimits, ServerState, router};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The config file.
    #[arg(long, default_value = "reprise.toml")]
    config: PathBuf,
    /// Listen here instead of the config's `server.listen` (port 0 picks a free port).
    #[arg(long)]
    listen: Option<String>,
    #[command(flatten)]
    pub(super) threads: ThreadArgs,
}

impl ServeArgs {
    /// The config's `log_format`, if the config can be read.
    pub(super) fn log_format(&self) -> Option<LogFormat> {
        Config::load(&self.config).ok().and_then(|c| c.log_format)
    }
}

pub async fn serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(&args.config)?;
    let token = config.token().map_err(anyhow::Error::msg)?;
    // Bound first: a server that may not serve here stops before it recovers anything.
    let listen = args
        .listen
        .clone()
        .unwrap_or_else(|| config.server.listen.clone());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    check_access(token.is_some(), config.server.unauthenticated, address)?;
    let runtime = config.runtime(super::telemetry(&config.telemetry)?).await?;

    let mut components = BTreeMap::new();
    for (name, path) in &config.components {
        let bytes = component_bytes(path).with_context(|| format!("component {name:?}"))?;
        let loaded = runtime
            .register_named(&bytes, name)
            .await
            .with_context(|| format!("component {name:?} ({})", path.display()))?;
        components.insert(name.clone(), loaded);
    }
    let instance_components: BTreeMap<String, String> = config
        .all_instances()
        .into_iter()
        .map(|(name, instance)| (name, instance.component.clone()))
        .collect();
    let instances: BTreeMap<_, _> = instance_components
        .iter()
        .filter_map(|(name, component)| {
            components.get(component).map(|c| (name.clone(), c.clone()))
        })
        .collect();
    let serving = Arc::new(Serving::new(instance_components, instances));
    keep_versions_in_flight_loaded(&runtime).await?;

    let node_options = NodeOptions {
        queues: config.queue_options(),
        lease: config.lease.unwrap_or(DEFAULT_LEASE),
        retention: config.retention,
        serving: serving.clone(),
        schedules: config.schedule_bodies().map_err(anyhow::Error::msg)?,
    };
    let queues = node_options.queues.clone();
    let node = Node::start(runtime.clone(), node_options).await?;

    let state = Arc::new(ServerState {
        runtime: runtime.clone(),
        serving: serving.clone(),
        token,
        allowed_hosts: AllowedHosts::for_listen(address, &config.server.allowed_hosts),
        queues,
        draining: AtomicBool::new(false),
        scheduler: node.scheduler().clone(),
    });
    let limits = BodyLimits {
        max_body: config.server.max_body,
        body_timeout: config.server.body_timeout,
    };
    let app = router(state.clone(), limits);
    let stop_http = CancellationToken::new();
    let http = tokio::spawn(reprise_host::server::serve(
        listener,
        app,
        config.server.header_timeout,
        stop_http.clone(),
    ));
    // Tests and scripts read the bound address (with port 0 it is chosen here) from stdout.
    println!("reprise serve listening on http://{address}");
    let traces = runtime.options().telemetry.describe();
    tracing::info!(%address, executor_id = %config.executor_id, recovered = node.recovered(), queues = config.queues.len(), %traces, "serving");

    tokio::spawn(reload_on_hangup(
        args.config.clone(),
        runtime.clone(),
        serving.clone(),
    ));
    shutdown_signal().await?;
    tracing::info!(
        in_flight = runtime.in_flight(),
        "shutting down: no new work, draining"
    );
    state.draining.store(true, Ordering::Relaxed);
    let drained = node.shutdown(config.server.grace_period).await;
    if drained.finished {
        tracing::info!(
            parked = drained.parked,
            "all running workflows finished; parked ones stay PENDING and resume at the next start (or on another host, once this lease runs out)"
        );
    } else {
        tracing::warn!(
            in_flight = runtime.in_flight(),
            "grace period over: unfinished workflows stay PENDING and resume at the next start (or on another host, once this lease runs out)"
        );
    }
    stop_http.cancel();
    if let Err(err) = http.await {
        tracing::warn!("admin server ended with an error: {err}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Loads every stored version that workflows in flight run on, once, before they recover: each
/// stays resident beside the others. One that does not load is logged, not fatal: its
/// workflows fail to recover with that error, and every other one runs.
async fn keep_versions_in_flight_loaded(runtime: &Runtime) -> anyhow::Result<()> {
    for version in runtime.store().component_versions().await? {
        if version.in_flight > 0
            && let Err(err) = runtime.component(&version.digest).await
        {
            tracing::error!(digest = %version.digest, in_flight = version.in_flight, "a version workflows in flight run on does not load: {err}");
        }
    }
    Ok(())
}

/// On SIGHUP, reads the configured components' files again: a changed one becomes a new
/// version that new starts get, without a restart; workflows in flight keep theirs.
async fn reload_on_hangup(config: PathBuf, runtime: Runtime, serving: Arc<Serving>) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        tracing::warn!("cannot listen for SIGHUP: new component versions need a restart");
        return;
    };
    while hangups.recv().await.is_some() {
        let components = match Config::load(&config) {
            Ok(config) => config.components,
            Err(err) => {
                tracing::error!("SIGHUP: {err:#}; keeping the versions served now");
                continue;
            }
        };
        for (name, path) in components {
            let added = match component_bytes(&path) {
                Ok(bytes) => serving
                    .add_version(&runtime, &name, &bytes)
                    .await
                    .map_err(anyhow::Error::from),
                Err(err) => Err(err),
            };
            match added {
                Ok((loaded, true)) => {
                    tracing::info!(component = %name, digest = %loaded.digest, "SIGHUP: new version loaded")
                }
                Ok((_, false)) => tracing::info!(component = %name, "SIGHUP: unchanged"),
                Err(err) => {
                    tracing::error!(component = %name, "SIGHUP: {err:#}; keeping the version served now")
                }
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    Ok(())
}

/// A server has a token, or says it has none on purpose and listens on loopback only.
fn check_access(
    has_token: bool,
    unauthenticated: bool,
    address: std::net::SocketAddr,
) -> anyhow::Result<()> {
    match (has_token, unauthenticated) {
        (true, true) => anyhow::bail!(
            "server.unauthenticated = true and a token are both set: remove one of them"
        ),
        (true, false) => Ok(()),
        (false, false) => anyhow::bail!(
            "the server has no token: set server.token (or server.token_env), or set \
             server.unauthenticated = true to serve without one on a loopback address"
        ),
        (false, true) if !address.ip().is_loopback() => anyhow::bail!(
            "server.unauthenticated = true serves only on a loopback address, not {address}: \
             set a token to listen there"
        ),
        (false, true) => {
            tracing::warn!(%address, "serving without a token (server.unauthenticated = true): any local process may start, cancel and read workflows");
            Ok(())
        }
    }
}
