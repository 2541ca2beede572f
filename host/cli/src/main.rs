//! The `reprise` binary: the command line (one file per subcommand), the `reprise.toml` model
//! and the bench. It drives the host library and is the only crate that knows clap or TOML.

mod bench;
mod bundle;
mod component;
mod config;
mod enqueue;
mod executors;
mod grants;
mod inspect;
mod mailbox;
mod progress;
mod recover;
mod replay;
mod run;
mod schedule;
mod serve;
mod server_args;
mod table;
mod time;
mod upgrade;
mod watch;
mod workflow;

/// mimalloc keeps per-thread free lists small and hands pages back itself: a host holding many
/// parked workflows across worker threads keeps less resident memory than with glibc's arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use clap::{Args, Parser, Subcommand};

use crate::config::{LogFormat, TelemetryConfig, parse_size};
use reprise_host::engine::EngineOptions;
use reprise_host::grants::Grants;
use reprise_host::limits::InstanceLimits;
use reprise_host::node::lease;
use reprise_host::runtime::{
    InstanceOptions, InvalidId, Runtime, RuntimeError, RuntimeOptions, validate_workflow_id,
};
use reprise_host::telemetry::{Telemetry, TelemetryError};
use reprise_store::{Durability, Store, open_store};

/// Durable workflows in WebAssembly: every step checkpointed, every failure recovered.
#[derive(Debug, Parser)]
#[command(name = "reprise", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Logs on stderr as `text` or `json` (one object per line) [default: text, or `serve`'s
    /// `log_format`].
    #[arg(long, global = true, env = "REPRISE_LOG_FORMAT")]
    log_format: Option<LogFormat>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one workflow to its end and print its output.
    Run(run::RunArgs),
    /// Resume every PENDING workflow of this executor (after a crash or a kill).
    Recover(recover::RecoverArgs),
    /// List the workflows and steps a component defines.
    Inspect(inspect::InspectArgs),
    /// Look at workflows and their steps.
    #[command(subcommand)]
    Workflow(workflow::WorkflowCommand),
    /// Run a long-lived host: queues, the admin HTTP API, recovery at start, graceful drain.
    Serve(serve::ServeArgs),
    /// Enqueue workflows on a running `reprise serve` (and optionally await their results).
    Enqueue(enqueue::EnqueueArgs),
    /// The executors sharing the database: their leases and the PENDING workflows each owns.
    Executors(executors::ExecutorsArgs),
    /// Manage a running `reprise serve`'s schedules.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
    /// Measure throughput, per-step overhead, instantiation and replay.
    Bench(bench::BenchArgs),
    /// Replay every workflow in flight against new code, executing nothing: which would
    /// diverge from their histories (exit 1 when any would).
    UpgradeCheck(upgrade::UpgradeCheckArgs),
    /// The stored versions of the components, with the workflows in flight on each.
    Components(upgrade::ComponentsArgs),
    /// Per patch and version: how many workflows in flight took each branch.
    Patches(upgrade::PatchesArgs),
    /// Replay a stored workflow here with nothing executed or written, and print its timeline.
    Replay(replay::ReplayArgs),
}

/// The database of the commands that read or write workflows (not `serve`, which takes it from
/// its config file, nor `enqueue`, which talks to a server).
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Database: a SQLite file path, `sqlite://path`, or `postgres://…` for a database several
    /// hosts share.
    #[arg(long, env = "REPRISE_DATABASE_URL", default_value = "reprise.db")]
    database: String,
    /// `synced` (survives power loss; an fsync per commit) or `process` (survives a host crash).
    #[arg(long, env = "REPRISE_DURABILITY", default_value = "synced")]
    durability: Durability,
    /// A `reprise.toml` (a path) to take the database from, as `serve` does, and for the
    /// commands that run workflows the executor id and the instances with their limits and
    /// grants; or a config value the guest can read (`key=value`, repeatable).
    #[arg(long = "config", value_name = "FILE | KEY=VALUE", value_parser = parse_config_arg)]
    config: Vec<ConfigArg>,
}

impl StoreArgs {
    /// The database `--config`'s file names, else `--database`.
    async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        if let Some(path) = self.config_file()? {
            let config = config::Config::load(&path)?;
            return Ok(open_store(&config.database, config.durability).await?);
        }
        Ok(open_store(&self.database, self.durability).await?)
    }

    /// A runtime that runs no workflow here (replays, checks, moves to new code): no lease, no
    /// tracing; the instances' limits from `--config`'s file, else the defaults. A SQLite
    /// database that does not exist is an error, not a new empty file.
    async fn offline_runtime(&self) -> anyhow::Result<Runtime> {
        self.offline_runtime_as("replay", true).await
    }

    /// [`StoreArgs::offline_runtime`] under `executor_id` (the config file's, when given);
    /// one that may create its database unless `must_exist`.
    async fn offline_runtime_as(
        &self,
        executor_id: &str,
        must_exist: bool,
    ) -> anyhow::Result<Runtime> {
        let config = match self.config_file()? {
            Some(path) => Some(config::Config::load(&path)?),
            None => None,
        };
        let url = config
            .as_ref()
            .map_or(self.database.as_str(), |c| c.database.as_str());
        anyhow::ensure!(
            !must_exist || reprise_store::database_exists(url),
            "no database at {url}: give the one the workflows ran on with --database"
        );
        match config {
            Some(config) => config.runtime(Telemetry::off()).await,
            None => {
                let store = self.open().await?;
                let options = RuntimeOptions::single(executor_id, InstanceOptions::default());
                Ok(Runtime::new(store, &EngineOptions::default(), options)?)
            }
        }
    }

    /// The `reprise.toml` given with `--config`, if any (at most one).
    fn config_file(&self) -> anyhow::Result<Option<PathBuf>> {
        let mut files = self.config.iter().filter_map(|arg| match arg {
            ConfigArg::File(path) => Some(path.clone()),
            ConfigArg::Value(..) => None,
        });
        let first = files.next();
        anyhow::ensure!(
            files.next().is_none(),
            "--config names more than one file: give one reprise.toml"
        );
        Ok(first)
    }

    /// The `key=value` config values given with `--config`.
    fn config_values(&self) -> BTreeMap<String, String> {
        self.config
            .iter()
            .filter_map(|arg| match arg {
                ConfigArg::Value(key, value) => Some((key.clone(), value.clone())),
                ConfigArg::File(_) => None,
            })
            .collect()
    }
}

/// The async runtime's threads, for the commands that run guests.
#[derive(Debug, Clone, Args)]
pub struct ThreadArgs {
    /// Threads that run guests and I/O. One gives the lowest checkpoint latency (no
    /// cross-thread wake-ups per step); more help when many CPU-bound workflows run at once.
    #[arg(long, env = "REPRISE_WORKER_THREADS", default_value_t = 1)]
    worker_threads: usize,
}

/// Everything a command that runs workflows here needs: the database, who owns the workflows,
/// threads and limits.
#[derive(Debug, Clone, Args)]
pub struct HostArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Who owns the workflows started here; `recover` resumes only this executor's.
    #[arg(long, env = "REPRISE_EXECUTOR_ID", default_value = "local")]
    executor_id: String,
    #[command(flatten)]
    threads: ThreadArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    grants: grants::GrantArgs,
}

impl HostArgs {
    /// The memory limit given on the command line, if any.
    fn memory_limit(&self) -> Option<u64> {
        self.limits.memory_limit
    }

    /// A runtime that traces when the `OTEL_EXPORTER_OTLP_*` variables name a collector, and
    /// the lease on its executor id, held until the returned guard drops: while this process
    /// drives workflows no serving host adopts them, and once it dies they adopt its work.
    async fn runtime(&self) -> anyhow::Result<(Runtime, HeldLease)> {
        let telemetry = telemetry(&TelemetryConfig::default())?;
        let runtime = match self.store.config_file()? {
            Some(path) => {
                anyhow::ensure!(
                    !self.grants.any(),
                    "--config {}: the instances' grants come from the file; drop the grant flags",
                    path.display()
                );
                config::Config::load(&path)?.runtime(telemetry).await?
            }
            None => {
                let store = self.store.open().await?;
                let options = RuntimeOptions {
                    telemetry,
                    ..self.limits.runtime_options(
                        &self.executor_id,
                        self.grants.grants()?,
                        self.store.config_values(),
                    )
                };
                Runtime::new(store, &EngineOptions::default(), options)?
            }
        };
        let executor_id = runtime.options().executor_id.clone();
        let stop = tokio_util::sync::CancellationToken::new();
        lease::take(runtime.dispatch(), lease::DEFAULT_LEASE, stop.clone())
            .await
            .map_err(|err| {
                anyhow::anyhow!("cannot take the lease of executor {executor_id}: {err}")
            })?;
        Ok((runtime, HeldLease(stop)))
    }
}

/// Renews this process's executor lease until dropped.
pub struct HeldLease(tokio_util::sync::CancellationToken);

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Limits and recovery settings shared by the commands that run workflows.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Memory limit per instance, e.g. `64MiB`, `1GiB`, or bytes [default: 64MiB]. For
    /// `workflow resume`, the resumed workflow's own limit from now on.
    #[arg(long, value_parser = parse_size)]
    memory_limit: Option<u64>,
    /// Fuel (about one unit per wasm instruction) for each step attempt and each stretch of
    /// workflow code between durable calls; bounds infinite loops, not long workflows.
    #[arg(long, default_value_t = InstanceLimits::DEFAULT_FUEL)]
    fuel: u64,
    /// Largest output a workflow or step may return, e.g. `16MiB`.
    #[arg(long, default_value = "16MiB", value_parser = parse_size)]
    max_output: u64,
    /// Recoveries after the workflow's own traps before MAX_RECOVERY_ATTEMPTS_EXCEEDED.
    #[arg(long, default_value_t = 100)]
    max_recovery_attempts: u32,
    /// Recoveries after host crashes or restarts under the workflow, counted apart.
    #[arg(long, default_value_t = InstanceOptions::DEFAULT_MAX_HOST_RECOVERIES)]
    max_host_recoveries: u32,
}

/// What one `--config` gives.
#[derive(Debug, Clone)]
enum ConfigArg {
    /// A config value the guest reads.
    Value(String, String),
    /// A `reprise.toml`.
    File(PathBuf),
}

fn parse_config_arg(text: &str) -> Result<ConfigArg, String> {
    Ok(match text.split_once('=') {
        Some((key, value)) => ConfigArg::Value(key.to_string(), value.to_string()),
        None => ConfigArg::File(PathBuf::from(text)),
    })
}

impl LimitArgs {
    fn runtime_options(
        &self,
        executor_id: &str,
        grants: Arc<Grants>,
        config: BTreeMap<String, String>,
    ) -> RuntimeOptions {
        RuntimeOptions::single(
            executor_id,
            InstanceOptions {
                limits: InstanceLimits {
                    memory_bytes: self
                        .memory_limit
                        .unwrap_or(InstanceLimits::DEFAULT_MEMORY_BYTES),
                    fuel: self.fuel,
                    max_output_bytes: self.max_output,
                },
                max_recovery_attempts: self.max_recovery_attempts,
                max_host_recoveries: self.max_host_recoveries,
                config,
                trap_policies: Default::default(),
                grants,
                reach: Vec::new(),
                quotas: Default::default(),
                upgrade: Default::default(),
                steps: BTreeMap::new(),
            },
        )
    }
}

impl Command {
    /// `serve`'s `log_format`, read before logging starts (the config is read again, and its
    /// errors reported, when `serve` starts).
    fn configured_log_format(&self) -> Option<LogFormat> {
        match self {
            Command::Serve(args) => args.log_format(),
            _ => None,
        }
    }

    /// Threads for the async runtime: one unless the command takes `--worker-threads`.
    fn worker_threads(&self) -> usize {
        let threads = match self {
            Command::Run(args) => Some(&args.host.threads),
            Command::Recover(args) => Some(&args.host.threads),
            Command::Workflow(command) => command.threads(),
            Command::Serve(args) => Some(&args.threads),
            Command::Bench(args) => Some(&args.threads),
            // Dry replays are guest CPU: every core.
            Command::UpgradeCheck(_) | Command::Patches(_) => {
                return std::thread::available_parallelism().map_or(1, |n| n.get());
            }
            Command::Inspect(_)
            | Command::Replay(_)
            | Command::Components(_)
            | Command::Enqueue(_)
            | Command::Executors(_)
            | Command::Schedule(_) => None,
        };
        threads.map_or(1, |t| t.worker_threads.max(1))
    }
}

/// Reads a JSON input argument. A bare word is the usual slip (`o-1` for the string `"o-1"`),
/// so the error says how to quote it.
fn parse_input(text: &str) -> anyhow::Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| {
        let looks_like_json = text
            .trim_start()
            .starts_with(|c: char| matches!(c, '{' | '[' | '"' | '-') || c.is_ascii_digit());
        if looks_like_json {
            anyhow::anyhow!("input is not valid JSON: {e}")
        } else {
            let quoted = serde_json::Value::String(text.to_string());
            anyhow::anyhow!(
                "input is not valid JSON ({e}): a string input is JSON too, so quote it: '{quoted}'"
            )
        }
    })
}

/// The error and its causes on one line, each cause once: errors that already end with their
/// cause's text (`"cannot open database x: {source}"`) do not repeat it.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// A workflow id argument, checked against the id rule as clap parses it: a bad one is
/// reported with the rule, exit code 2, before any database is opened.
fn parse_workflow_id(text: &str) -> Result<String, InvalidId> {
    validate_workflow_id(text)?;
    Ok(text.to_string())
}

/// The command's tracing, flushed by [`main`] when the command returns, whichever way.
static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();

/// Starts tracing as `config` and the environment say (once per process), for [`main`] to
/// flush at exit.
fn telemetry(config: &TelemetryConfig) -> anyhow::Result<Telemetry> {
    if let Some(started) = TELEMETRY.get() {
        return Ok(started.clone());
    }
    let target = config.target().map_err(TelemetryError::Config)?;
    let started = Telemetry::start(target.as_ref())?;
    if let Some(target) = &target {
        tracing::info!(url = %target.traces_url, service_name = %target.service_name, "exporting traces over OTLP");
    }
    Ok(TELEMETRY.get_or_init(|| started).clone())
}

/// Exit code for a workflow that ended without success.
const EXIT_WORKFLOW_FAILED: u8 = 1;
/// Exit code for bad input or an unusable database: nothing ran.
const EXIT_ERROR: u8 = 2;
/// Exit code for a workflow that was stored (and may have run steps) but could not finish here,
/// a failed checkpoint say: it stays PENDING and resumes at the next recovery.
const EXIT_UNFINISHED: u8 = 3;
/// Exit code for a workflow its trap policy paused for an operator.
const EXIT_PAUSED: u8 = 4;

/// Parses the command line, runs the command, maps its outcome to an exit code.
fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(
        cli.log_format
            .or_else(|| cli.command.configured_log_format()),
    );
    ignore_file_size_signal();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.command.worker_threads())
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let result = runtime.block_on(dispatch(&cli));
    if let Some(telemetry) = TELEMETRY.get() {
        runtime.block_on(telemetry.shutdown());
    }
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            ExitCode::from(exit_code(&err))
        }
    }
}

/// What the process's exit says about an error: whether anything may have run.
fn exit_code(err: &anyhow::Error) -> u8 {
    let unfinished = err.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<RuntimeError>(),
            Some(RuntimeError::Unfinished { .. })
        )
    });
    if unfinished {
        EXIT_UNFINISHED
    } else {
        EXIT_ERROR
    }
}

async fn dispatch(cli: &Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Run(args) => run::run(args).await,
        Command::Recover(args) => recover::recover(args).await,
        Command::Inspect(args) => inspect::inspect(args).await,
        Command::Workflow(command) => workflow::workflow(command).await,
        Command::Serve(args) => serve::serve(args).await,
        Command::Enqueue(args) => enqueue::enqueue(args).await,
        Command::Executors(args) => executors::executors(args).await,
        Command::Schedule(command) => schedule::schedule(command).await,
        Command::Bench(args) => bench::bench(args).await,
        Command::UpgradeCheck(args) => upgrade::upgrade_check(args).await,
        Command::Patches(args) => upgrade::patches(args).await,
        Command::Components(args) => upgrade::components(args).await,
        Command::Replay(args) => replay::replay(args).await,
    }
}

/// Past a file-size limit (`ulimit -f`) the kernel kills a writer with SIGXFSZ, in the middle of
/// a commit. Ignored, the write fails with EFBIG instead: the database reports it like a full
/// disk, and the user sees that error, with nothing half-written.
fn ignore_file_size_signal() {
    #[cfg(unix)]
    // SAFETY: runs before any other thread of ours exists and installs no handler, only the
    // ignore disposition, which every thread and child process may inherit.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

fn init_tracing(format: Option<LogFormat>) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,guest=info,reprise=info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format.unwrap_or_default() {
        // Fields flattened beside `message`, and no span lists: one flat object a line, what
        // log shippers index.
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}
