//! `reprise replay ID`: a stored workflow replayed here with nothing executed or written —
//! on its own version, or on other code (`--to`) — and its timeline printed: each recorded
//! position, the guest's log lines between them, and where the replay stopped or why it
//! could not go on.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::component::component_bytes;
use super::table::{clip, print};
use super::time::format_ms;
use super::{StoreArgs, parse_workflow_id};
use reprise_host::engine::EngineOptions;
use reprise_host::runtime::WorkflowEngine;
use reprise_host::runtime::replay::bundle::replay_bundle;
use reprise_host::runtime::replay::check::at;
use reprise_host::runtime::replay::{GuestLine, Replayed, Verdict};
use reprise_protocol::recorded;
use reprise_store::StepRecord;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The stored workflow to replay (or `--bundle`).
    #[arg(value_parser = parse_workflow_id, required_unless_present = "bundle")]
    id: Option<String>,
    /// Replay this bundle (`workflow export`) instead, with no database: nothing is opened or
    /// created.
    #[arg(long, value_name = "FILE", conflicts_with = "id")]
    bundle: Option<PathBuf>,
    /// Replay on this component (`.wasm` or a guest crate directory) instead of the version
    /// the workflow runs on.
    #[arg(long, value_name = "NEW.wasm")]
    to: Option<PathBuf>,
    /// Replay only the positions before this one.
    #[arg(long, value_name = "POSITION")]
    until: Option<u32>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn replay(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let replayed = match (&args.bundle, &args.id) {
        (Some(file), _) => {
            let bundle = super::bundle::read(file)?;
            let engine = WorkflowEngine::new(&EngineOptions::default())?;
            let to = match &args.to {
                Some(path) => Some(engine.load(&component_bytes(path)?).await?),
                None => None,
            };
            replay_bundle(&engine, &bundle, to, args.until).await?
        }
        (None, id) => {
            let id = id.as_deref().unwrap_or_default();
            let runtime = args.store.offline_runtime().await?;
            let to = match &args.to {
                Some(path) => Some(runtime.load(&component_bytes(path)?).await?),
                None => None,
            };
            runtime.replay(id, to, args.until).await?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&as_json(&replayed))?);
    } else {
        print_timeline(&replayed);
    }
    Ok(if replayed.replay.verdict.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What a recorded position's outcome was, in a few words.
fn outcome(step: &StepRecord) -> String {
    match (&step.output, &step.error) {
        (_, Some(failure)) => format!("error: {}", clip(&failure.message, 40)),
        (Some(output), None) => format!("{} B", output.len()),
        (None, None) => "-".into(),
    }
}

fn print_timeline(replayed: &Replayed) {
    let workflow = &replayed.workflow;
    let own = replayed.component == workflow.app_version;
    println!(
        "workflow {} ({}, {}) replayed on {} ({})",
        workflow.id,
        workflow.name,
        workflow.status,
        replayed.component,
        if own { "its own version" } else { "other code" }
    );
    let log_row = |line: &GuestLine| {
        let from = line
            .step
            .as_deref()
            .map_or(String::new(), |s| format!(" [{s}]"));
        vec![
            String::new(),
            "log".into(),
            clip(
                &format!("{} {}{from} (replayed)", line.level, line.message),
                100,
            ),
            String::new(),
            String::new(),
            String::new(),
        ]
    };
    let lines = &replayed.replay.seen.lines;
    let mut rows = Vec::new();
    let mut next_line = 0;
    for step in &replayed.steps {
        while let Some(line) = lines
            .get(next_line)
            .filter(|l| l.position <= step.function_id)
        {
            rows.push(log_row(line));
            next_line += 1;
        }
        rows.push(vec![
            step.function_id.to_string(),
            recorded::kind_of(&step.name).as_str().to_string(),
            clip(&step.name, 60),
            step.attempts.to_string(),
            outcome(step),
            format_ms(step.completed_at),
        ]);
    }
    rows.extend(lines[next_line..].iter().map(log_row));
    print(
        &["POS", "KIND", "NAME", "ATTEMPTS", "OUTCOME", "COMMITTED"],
        &rows,
    );
    let verdict = &replayed.replay.verdict;
    println!("{}: {}", verdict.label().to_uppercase(), at(verdict));
    match verdict {
        Verdict::Diverged { message, .. } | Verdict::Unconsumed { message, .. } => {
            println!("  {message}");
        }
        Verdict::Trap { backtrace, .. } if !backtrace.is_empty() => {
            println!("  guest backtrace (innermost first):");
            for (i, frame) in backtrace.iter().enumerate() {
                println!("    {i:>2}: {frame}");
            }
        }
        _ => {}
    }
}

fn as_json(replayed: &Replayed) -> serde_json::Value {
    let timeline: Vec<_> = replayed
        .steps
        .iter()
        .map(|step| {
            json!({
                "position": step.function_id,
                "kind": recorded::kind_of(&step.name).as_str(),
                "name": step.name,
                "attempts": step.attempts,
                "output_bytes": step.output.as_ref().map(String::len),
                "error": step.error.as_ref().map(|f| &f.message),
                "completed_at": step.completed_at,
            })
        })
        .collect();
    let lines: Vec<_> = replayed
        .replay
        .seen
        .lines
        .iter()
        .map(|l| json!({"position": l.position, "level": l.level, "step": l.step, "message": l.message, "replayed": true}))
        .collect();
    json!({
        "id": replayed.workflow.id,
        "workflow": replayed.workflow.name,
        "status": replayed.workflow.status,
        "app_version": replayed.workflow.app_version,
        "component": replayed.component,
        "timeline": timeline,
        "logs": lines,
        "result": replayed.replay.verdict,
    })
}
