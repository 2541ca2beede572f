//! `reprise workflow list|get|steps|cancel|resume|fork`: look at workflows and their recorded
//! steps, and manage them from the command line.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use reprise_client::wire::{StepView, WorkflowView};

use super::mailbox;
use super::run::report;
use super::table::{clip, print, print_workflows};
use super::time::{format_ms, parse_time};
use super::{HostArgs, StoreArgs, ThreadArgs, parse_workflow_id};
use crate::config::parse_duration;
use reprise_host::runtime::Runtime;
use reprise_host::server::{ToView, views};
use reprise_store::{WorkflowFilter, WorkflowStatus};

#[derive(Debug, Subcommand)]
pub enum WorkflowCommand {
    /// List workflows, newest first.
    List {
        /// Only this status (PENDING, SUCCESS, ERROR, …).
        #[arg(long)]
        status: Option<WorkflowStatus>,
        /// Only workflows of this name.
        #[arg(long)]
        name: Option<String>,
        /// Only workflows started on this queue.
        #[arg(long)]
        queue: Option<String>,
        /// Only workflows created after this time: a UTC date or date-time
        /// (`2024-05-01 12:00:00`), milliseconds since the epoch, or a duration ago (`2h`).
        #[arg(long, value_parser = parse_time)]
        created_after: Option<i64>,
        /// Only workflows created before this time (same forms as `--created-after`).
        #[arg(long, value_parser = parse_time)]
        created_before: Option<i64>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Skip this many (to page through a long listing).
        #[arg(long)]
        offset: Option<u32>,
        /// Only workflows on a component version whose digest starts with this.
        #[arg(long)]
        app_version: Option<String>,
        #[arg(long)]
        json: bool,
        /// Keep the listing current, refreshed at this interval (default 1s) until Ctrl-C:
        /// redrawn in place on a terminal, printed again on each change otherwise.
        #[arg(long, value_name = "INTERVAL", num_args = 0..=1, default_missing_value = "1s",
              value_parser = parse_duration)]
        watch: Option<Duration>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show one workflow.
    Get {
        #[arg(value_parser = parse_workflow_id)]
        id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The finished runs of a workflow that continued as new: each one's version, input, the
    /// input it continued with and its history.
    Runs {
        #[arg(value_parser = parse_workflow_id)]
        id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show a workflow's recorded steps in call order.
    Steps {
        #[arg(value_parser = parse_workflow_id)]
        id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Cancel a workflow. A process running it stops it at its next durable call.
    Cancel {
        #[arg(value_parser = parse_workflow_id)]
        id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Send a message to a workflow's topic; its `recv` takes it (a waiting workflow wakes).
    Send {
        /// The workflow to send to.
        #[arg(value_parser = parse_workflow_id)]
        id: String,
        /// The topic its `recv` takes from.
        topic: String,
        /// The message, as JSON (a string is quoted: '"approve"').
        message: String,
        /// A second send with the same key to the same workflow stores nothing.
        #[arg(long)]
        idempotency_key: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print the latest value of a workflow's event, waiting up to `--timeout` for it to be
    /// set (exit 1 when it is not).
    Event {
        /// The workflow that sets the event.
        #[arg(value_parser = parse_workflow_id)]
        id: String,
        /// The event's key, as `set_event` names it.
        key: String,
        /// How long to wait for it to be set, e.g. `10s` (0: answer at once).
        #[arg(long, default_value = "0s", value_parser = parse_duration)]
        timeout: Duration,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print the values of a workflow's stream, one JSON value a line; `--follow` waits for
    /// more until the stream is closed or its workflow ends.
    Stream {
        /// The workflow that writes the stream.
        #[arg(value_parser = parse_workflow_id)]
        id: String,
        /// The stream's key, as `write_stream` names it.
        key: String,
        /// Start at this offset (0 is the first value).
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Keep reading until the stream is closed or its workflow ends.
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Delete ended workflows (SUCCESS, ERROR, CANCELLED, MAX_RECOVERY_ATTEMPTS_EXCEEDED) last
    /// changed longer ago than `--older-than`, with their steps, in small batches. Active
    /// workflows, and children an active parent may await, are never deleted.
    Gc {
        /// Age, e.g. `30d`, `12h`, `0s` (everything ended).
        #[arg(long, value_parser = parse_duration)]
        older_than: Duration,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Resume a cancelled, failed or paused workflow from its last checkpoint and run it to
    /// the end here (`--memory-limit` gives it a new memory limit).
    Resume {
        #[arg(value_parser = parse_workflow_id)]
        id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        host: HostArgs,
    },
    /// Move a workflow in flight to new code when its history replays cleanly on it (exit 1
    /// when it does not, and nothing changes).
    Upgrade(super::upgrade::WorkflowUpgradeArgs),
    /// Write a workflow as one repro bundle: its component, row, history, the messages it
    /// received, its children's ends (or bundles) and its settings; grants by name only.
    Export(super::bundle::ExportArgs),
    /// Load a bundle into this database (an id that exists here is refused).
    Import(super::bundle::ImportArgs),
    /// Start a copy that replays the original's positions before `--from-step` and runs the
    /// rest anew, here, to the end.
    Fork {
        #[arg(value_parser = parse_workflow_id)]
        id: String,
        #[arg(long)]
        from_step: u32,
        /// The new workflow's id (generated when absent).
        #[arg(long = "new-id", value_parser = parse_workflow_id)]
        new_id: Option<String>,
        /// Run the fork on this component (`.wasm` or a guest crate directory) instead of the
        /// original's version; the steps it keeps must replay cleanly on it.
        #[arg(long, value_name = "NEW.wasm")]
        to: Option<std::path::PathBuf>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        host: HostArgs,
    },
}

impl WorkflowCommand {
    /// The thread setting of the subcommands that run workflows.
    pub(super) fn threads(&self) -> Option<&ThreadArgs> {
        match self {
            WorkflowCommand::Resume { host, .. } | WorkflowCommand::Fork { host, .. } => {
                Some(&host.threads)
            }
            _ => None,
        }
    }
}

pub async fn workflow(command: &WorkflowCommand) -> anyhow::Result<ExitCode> {
    match command {
        WorkflowCommand::Resume { id, json, host } => {
            let (runtime, _lease) = host.runtime().await?;
            runtime.resume(id, host.memory_limit()).await?;
            finish_here(&runtime, id, *json).await
        }
        WorkflowCommand::Fork {
            id,
            from_step,
            new_id,
            to,
            json,
            host,
        } => {
            let (runtime, _lease) = host.runtime().await?;
            let to = match to {
                Some(path) => Some(
                    runtime
                        .register(&super::component::component_bytes(path)?)
                        .await?,
                ),
                None => None,
            };
            let fork = runtime.fork(id, *from_step, new_id.clone(), to).await?;
            eprintln!("forked {id} from step {from_step} as {}", fork.id);
            finish_here(&runtime, &fork.id, *json).await
        }
        WorkflowCommand::Upgrade(args) => super::upgrade::workflow_upgrade(args).await,
        WorkflowCommand::Export(args) => super::bundle::export(args).await,
        WorkflowCommand::Import(args) => super::bundle::import(args).await,
        WorkflowCommand::Gc { older_than, store } => {
            let store = store.open().await?;
            let deleted =
                reprise_host::node::retention::delete_older_than(&*store, *older_than).await?;
            eprintln!("deleted {deleted} ended workflow(s)");
            Ok(ExitCode::SUCCESS)
        }
        WorkflowCommand::Send {
            id,
            topic,
            message,
            idempotency_key,
            store,
        } => mailbox::send(store, id, topic, message, idempotency_key.as_deref()).await,
        WorkflowCommand::Event {
            id,
            key,
            timeout,
            store,
        } => mailbox::event(store, id, key, *timeout).await,
        WorkflowCommand::Stream {
            id,
            key,
            offset,
            follow,
            store,
        } => mailbox::stream(store, id, key, *offset, *follow).await,
        WorkflowCommand::Cancel { id, store } => {
            let record = store.open().await?.cancel_workflow(id).await?;
            eprintln!("workflow {id} {}", record.status);
            Ok(ExitCode::SUCCESS)
        }
        WorkflowCommand::List {
            status,
            name,
            queue,
            created_after,
            created_before,
            limit,
            offset,
            app_version,
            json,
            watch,
            store,
        } => {
            let filter = WorkflowFilter {
                status: *status,
                name: name.clone(),
                queue: queue.clone(),
                created_after: *created_after,
                created_before: *created_before,
                limit: Some(*limit),
                offset: *offset,
                app_version: app_version.clone(),
                ..WorkflowFilter::default()
            };
            if let Some(every) = watch {
                return super::watch::watch(store.open().await?, &filter, *every, *json).await;
            }
            let workflows = store.open().await?.list_workflows(&filter).await?;
            if *json {
                let shown: Vec<WorkflowView> = views(workflows)?;
                println!("{}", serde_json::to_string_pretty(&shown)?);
            } else {
                print_workflows(&workflows);
            }
            Ok(ExitCode::SUCCESS)
        }
        WorkflowCommand::Get { id, json, store } => {
            let workflow = store
                .open()
                .await?
                .get_workflow(id)
                .await?
                .with_context(|| format!("no workflow with id {id}"))?;
            let workflow = workflow.to_view()?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&workflow)?);
            } else {
                print_workflow(&workflow);
            }
            Ok(ExitCode::SUCCESS)
        }
        WorkflowCommand::Runs { id, json, store } => {
            let store = store.open().await?;
            if store.get_workflow(id).await?.is_none() {
                anyhow::bail!("no workflow with id {id}");
            }
            let runs = store.runs(id).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                let rows: Vec<Vec<String>> = runs
                    .iter()
                    .map(|r| {
                        vec![
                            r.run.to_string(),
                            clip(&r.app_version, 12),
                            clip(&r.input, 30),
                            clip(&r.next_input, 30),
                            r.steps.len().to_string(),
                            format_ms(r.ended_at),
                        ]
                    })
                    .collect();
                print(
                    &[
                        "RUN",
                        "VERSION",
                        "INPUT",
                        "CONTINUED WITH",
                        "POSITIONS",
                        "ENDED",
                    ],
                    &rows,
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        WorkflowCommand::Steps { id, json, store } => {
            let store = store.open().await?;
            if store.get_workflow(id).await?.is_none() {
                anyhow::bail!("no workflow with id {id}");
            }
            let steps: Vec<StepView> = views(store.steps(id).await?)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&steps)?);
            } else {
                print_steps(&steps);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `workflow get` for humans: one field a line.
fn print_workflow(w: &WorkflowView) {
    let optional = |value: &Option<String>| value.clone().unwrap_or_default();
    let time = |ms: Option<i64>| ms.map(format_ms).unwrap_or_default();
    let config = w
        .config
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(" ");
    let fields = [
        ("id", w.id.clone()),
        ("name", w.name.clone()),
        ("status", w.status.to_string()),
        ("input", w.input.to_string()),
        (
            "output",
            w.output
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        ("error", optional(&w.error)),
        ("last trap", optional(&w.trap_class)),
        ("trap message", optional(&w.trap_message)),
        ("created", time(Some(w.created_at))),
        ("started", time(w.started_at)),
        ("updated", time(Some(w.updated_at))),
        ("run", w.run.to_string()),
        ("executions", w.executions.to_string()),
        ("traps", w.traps.to_string()),
        (
            "memory limit",
            w.memory_limit
                .map(|bytes| format!("{} MiB", bytes >> 20))
                .unwrap_or_else(|| "the instance's".into()),
        ),
        ("max recovery attempts", w.max_recovery_attempts.to_string()),
        ("executor", w.executor_id.clone()),
        ("app version", w.app_version.clone()),
        ("instance", w.instance.clone()),
        ("config", config),
        ("queue", optional(&w.queue_name)),
        ("priority", w.priority.to_string()),
        ("deduplication id", optional(&w.deduplication_id)),
        ("parent", optional(&w.parent_workflow_id)),
    ];
    for (key, value) in fields {
        println!("{key:>22}: {value}");
    }
}

/// `workflow steps` for humans: a table.
fn print_steps(steps: &[StepView]) {
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|s| {
            let outcome = match (&s.output, &s.error) {
                (Some(value), _) => clip(&value.to_string(), 48),
                (None, Some(failure)) => clip(&format!("error: {}", failure.message), 48),
                (None, None) => String::new(),
            };
            vec![
                s.function_id.to_string(),
                s.name.clone(),
                s.attempts.to_string(),
                format!("{} ms", s.completed_at - s.started_at),
                outcome,
            ]
        })
        .collect();
    print(&["#", "STEP", "ATTEMPTS", "TOOK", "OUTPUT"], &rows);
}

/// Waits for a workflow this process drives (and that a cancellation elsewhere may stop), then
/// reports it as `reprise run` does.
async fn finish_here(runtime: &Runtime, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let stop = tokio_util::sync::CancellationToken::new();
    let watcher = runtime.dispatch().spawn_cancellation_watcher(stop.clone());
    let record = runtime.wait(id, None).await?;
    stop.cancel();
    let _ = watcher.await;
    let record = record.with_context(|| format!("workflow {id} did not finish"))?;
    report(&record, json)
}
