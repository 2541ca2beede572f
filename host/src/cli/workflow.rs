//! `reprise workflow list|get|steps`: look at workflows and their recorded steps.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::Cli;
use super::table::{clip, print, print_workflows};
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
}

pub async fn workflow(cli: &Cli, command: &WorkflowCommand) -> anyhow::Result<ExitCode> {
    let store = cli.open_store().await?;
    match command {
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
                println!("{}", serde_json::to_string_pretty(&workflows)?);
            } else {
                print_workflows(&workflows);
            }
        }
        WorkflowCommand::Get { id, json } => {
            let workflow = store
                .get_workflow(id)
                .await?
                .with_context(|| format!("no workflow with id {id}"))?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&workflow)?);
            } else {
                let fields = [
                    ("id", workflow.id.clone()),
                    ("name", workflow.name.clone()),
                    ("status", workflow.status.to_string()),
                    ("input", workflow.input.clone()),
                    ("output", workflow.output.clone().unwrap_or_default()),
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
            let steps = store.steps(id).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&steps)?);
            } else {
                let rows: Vec<Vec<String>> = steps
                    .iter()
                    .map(|s| {
                        let outcome = match (&s.output, &s.error) {
                            (Some(value), _) => clip(value, 48),
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
