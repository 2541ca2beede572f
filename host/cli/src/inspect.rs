//! `reprise inspect`: what a component defines, without touching a database.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::component::component_bytes;
use reprise_host::engine::EngineOptions;
use reprise_host::runtime::WorkflowEngine;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A component (`.wasm`) or a guest crate directory to build.
    component: PathBuf,
    #[arg(long)]
    json: bool,
}

pub async fn inspect(args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let bytes = component_bytes(&args.component)?;
    let engine = WorkflowEngine::new(&EngineOptions::default())?;
    let component = engine.load(&bytes).await?;
    let defs = &component.definitions;
    if args.json {
        let doc = serde_json::json!({
            "digest": component.digest,
            "workflows": defs.workflows,
            "steps": defs.steps,
            "topics": defs.topics,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("component {}", component.digest);
    println!("workflows:");
    for workflow in &defs.workflows {
        println!("  {workflow}");
    }
    println!("steps:");
    let rows: Vec<Vec<String>> = defs
        .steps
        .iter()
        .map(|s| {
            let retry = if s.retries_allowed {
                format!(
                    "{} attempts, {} ms x{}",
                    s.max_attempts, s.interval_ms, s.backoff_rate
                )
            } else {
                "no retries".to_string()
            };
            vec![
                s.name.clone(),
                if s.isolated { "isolated" } else { "inline" }.into(),
                retry,
            ]
        })
        .collect();
    super::table::print(&["NAME", "RUNS", "RETRY POLICY"], &rows);
    if !defs.topics.is_empty() {
        println!("typed topics (sends are checked against the type's JSON Schema):");
        for topic in &defs.topics {
            println!("  {}: {}", topic.name, topic.type_name);
        }
    }
    Ok(ExitCode::SUCCESS)
}
