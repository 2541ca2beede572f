//! `reprise run`: run one workflow to its end on the embedded database and print its output.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use reprise_host::server::ToView;

use super::component::component_bytes;
use super::{EXIT_PAUSED, EXIT_WORKFLOW_FAILED, HostArgs, parse_input, parse_workflow_id};
use crate::config::parse_duration;
use reprise_host::runtime::StartRequest;
use reprise_store::{WorkflowRecord, WorkflowStatus, now_ms};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A component (`.wasm`) or a guest crate directory to build.
    component: PathBuf,
    /// The workflow to run.
    workflow: String,
    /// Its input as JSON (a string is quoted: '"o-1"').
    #[arg(default_value = "null")]
    input: String,
    /// Workflow id: an existing id of this workflow joins it instead of starting another. It is
    /// resumed here if it is this executor's or its executor's lease ran out; otherwise this
    /// waits for its end. An id of another workflow is refused.
    #[arg(long, value_parser = parse_workflow_id)]
    id: Option<String>,
    /// Print the whole workflow record as JSON instead of the output alone.
    #[arg(long)]
    json: bool,
    /// Cancel the workflow if it has not ended this long after it started (`30s`, `5m`).
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Start it only after this long (it stays ENQUEUED until then).
    #[arg(long, value_parser = parse_duration)]
    delay: Option<Duration>,
    /// Run it on this instance of `--config reprise.toml` (default: `default`).
    #[arg(long)]
    instance: Option<String>,
    #[command(flatten)]
    pub(super) host: HostArgs,
}

pub async fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    parse_input(&args.input)?;
    let bytes = component_bytes(&args.component)?;
    let (runtime, _lease) = args.host.runtime().await?;
    let component = runtime.register(&bytes).await?;
    if let Some(id) = &args.id
        && let Some(existing) = runtime.store().get_workflow(id).await?
        && existing.name == args.workflow
    {
        if existing.app_version != component.digest {
            eprintln!(
                "note: workflow {id} runs on the version it started on ({}), not on the given \
                 component ({}); `reprise workflow upgrade {id} --to {}` moves it when its \
                 history replays cleanly on it",
                existing.app_version,
                component.digest,
                args.component.display()
            );
        }
        eprintln!("joining existing workflow {id} ({})", existing.status);
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let watcher = runtime.dispatch().spawn_cancellation_watcher(stop.clone());
    let request = StartRequest {
        id: args.id.clone(),
        timeout: args.timeout,
        not_before: args.delay.map(|delay| {
            now_ms().saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
        }),
        instance: args.instance.clone().unwrap_or_default(),
        ..StartRequest::new(&args.workflow, &args.input)
    };
    let record = runtime.run_request(&component, request).await;
    stop.cancel();
    let _ = watcher.await;
    let record = record?;
    report(&record, args.json)
}

/// Prints a finished workflow: its output on stdout, or its error on stderr.
pub fn report(record: &WorkflowRecord, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        let view = record.clone().to_view()?;
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else if let Some(output) = &record.output {
        println!("{output}");
    }
    if record.status == WorkflowStatus::Success {
        eprintln!("workflow {} {}", record.id, record.status);
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "workflow {} {}: {}",
        record.id,
        record.status,
        record.error.as_deref().unwrap_or("(no error recorded)")
    );
    if record.status == WorkflowStatus::Paused {
        return Ok(ExitCode::from(EXIT_PAUSED));
    }
    Ok(ExitCode::from(EXIT_WORKFLOW_FAILED))
}
