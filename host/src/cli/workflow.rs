//! `reprise workflow list|get|steps|cancel|resume|fork`: look at workflows and their recorded
//! steps, and manage them from the command line.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use reprise_client::wire::{StepView, WorkflowView};

use super::run::report;
use super::table::{clip, print, print_workflows};
use super::{Cli, LimitArgs};
use crate::runtime::Runtime;
use crate::server::views;
use crate::store::{WorkflowFilter, WorkflowStatus};

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
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Show one workflow.
    Get {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Show a workflow's recorded steps in call order.
    Steps {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a workflow. A process running it stops it at its next durable call.
    Cancel { id: String },
    /// Resume a cancelled or failed workflow from its last checkpoint and run it to the end
    /// here.
    Resume {
        id: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Start a copy that replays the original's positions before `--from-step` and runs the
    /// rest anew, here, to the end.
    Fork {
        id: String,
        #[arg(long)]
        from_step: u32,
        /// The new workflow's id (generated when absent).
        #[arg(long = "new-id")]
        new_id: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        limits: LimitArgs,
    },
}

pub async fn workflow(cli: &Cli, command: &WorkflowCommand) -> anyhow::Result<ExitCode> {
    match command {
        WorkflowCommand::Resume { id, json, limits } => {
            let runtime = cli.runtime(limits).await?;
            runtime.resume(id).await?;
            return finish_here(&runtime, id, *json).await;
        }
        WorkflowCommand::Fork {
            id,
            from_step,
            new_id,
            json,
            limits,
        } => {
            let runtime = cli.runtime(limits).await?;
            let fork = runtime.fork(id, *from_step, new_id.clone()).await?;
            eprintln!("forked {id} from step {from_step} as {}", fork.id);
            return finish_here(&runtime, &fork.id, *json).await;
        }
        _ => {}
    }
    let store = cli.open_store().await?;
    match command {
        WorkflowCommand::Resume { .. } | WorkflowCommand::Fork { .. } => {}
        WorkflowCommand::Cancel { id } => {
            let record = store.cancel_workflow(id).await?;
            eprintln!("workflow {id} {}", record.status);
        }
        WorkflowCommand::List {
            status,
            name,
            limit,
            json,
        } => {
            let filter = WorkflowFilter {
                status: *status,
                name: name.clone(),
                limit: Some(*limit),
                ..WorkflowFilter::default()
            };
            let workflows = store.list_workflows(&filter).await?;
            if *json {
                let shown: Vec<WorkflowView> = views(workflows)?;
                println!("{}", serde_json::to_string_pretty(&shown)?);
            } else {
                print_workflows(&workflows);
            }
        }
        WorkflowCommand::Get { id, json } => {
            let workflow = store
                .get_workflow(id)
                .await?
                .with_context(|| format!("no workflow with id {id}"))?;
            let workflow = WorkflowView::try_from(workflow)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&workflow)?);
            } else {
                let fields = [
                    ("id", workflow.id.clone()),
                    ("name", workflow.name.clone()),
                    ("status", workflow.status.to_string()),
                    ("input", workflow.input.to_string()),
                    (
                        "output",
                        workflow
                            .output
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                    ),
                    ("error", workflow.error.clone().unwrap_or_default()),
                    ("last trap", workflow.trap_class.clone().unwrap_or_default()),
                    (
                        "trap message",
                        workflow.trap_message.clone().unwrap_or_default(),
                    ),
                    ("executions", workflow.executions.to_string()),
                    (
                        "max recovery attempts",
                        workflow.max_recovery_attempts.to_string(),
                    ),
                    ("executor", workflow.executor_id.clone()),
                    ("app version", workflow.app_version.clone()),
                    ("instance", workflow.instance.clone()),
                ];
                for (key, value) in fields {
                    println!("{key:>22}: {value}");
                }
            }
        }
        WorkflowCommand::Steps { id, json } => {
            if store.get_workflow(id).await?.is_none() {
                anyhow::bail!("no workflow with id {id}");
            }
            let steps: Vec<StepView> = views(store.steps(id).await?)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&steps)?);
            } else {
                let rows: Vec<Vec<String>> = steps
                    .iter()
                    .map(|s| {
                        let outcome = match (&s.output, &s.error) {
                            (Some(value), _) => clip(&value.to_string(), 48),
                            (None, Some(failure)) => {
                                clip(&format!("error: {}", failure.message), 48)
                            }
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
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Waits for a workflow this process drives (and that a cancellation elsewhere may stop), then
/// reports it as `reprise run` does.
async fn finish_here(runtime: &Runtime, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let stop = tokio_util::sync::CancellationToken::new();
    let watcher = runtime.spawn_cancellation_watcher(stop.clone());
    let record = runtime.wait(id, None).await?;
    stop.cancel();
    let _ = watcher.await;
    let record = record.with_context(|| format!("workflow {id} did not finish"))?;
    report(&record, json)
}
