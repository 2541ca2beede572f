//! `reprise workflow export` and `import`: a workflow as one repro bundle file, and back into
//! another database. `reprise replay --bundle` replays one with no database at all.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use super::{StoreArgs, parse_workflow_id};
use reprise_host::runtime::replay::bundle::Bundle;

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(value_parser = parse_workflow_id)]
    id: String,
    /// Include each child's own bundle, not only how it ended.
    #[arg(long)]
    children: bool,
    /// The file to write.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn export(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let runtime = args.store.offline_runtime().await?;
    let bundle = runtime.export(&args.id, args.children).await?;
    let text = serde_json::to_string(&bundle)?;
    // Written whole, then renamed: a reader never sees half a bundle.
    let partial = args.output.with_extension("partial");
    std::fs::write(&partial, text)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, &args.output)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    eprintln!(
        "exported {} ({}, {} positions, {} children) to {}",
        bundle.workflow.id,
        bundle.workflow.status,
        bundle.steps.len(),
        bundle.children.len(),
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A bundle `workflow export` wrote.
    file: PathBuf,
    /// Import it PAUSED: nothing runs it until `workflow resume`.
    #[arg(long)]
    paused: bool,
    /// The executor that owns it here (`recover` of this executor resumes it).
    #[arg(long, env = "REPRISE_EXECUTOR_ID", default_value = "local")]
    executor_id: String,
    #[command(flatten)]
    store: StoreArgs,
}

/// Reads and checks a bundle file.
pub fn read(path: &PathBuf) -> anyhow::Result<Bundle> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Bundle::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

pub async fn import(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let bundle = read(&args.file)?;
    let runtime = args
        .store
        .offline_runtime_as(&args.executor_id, false)
        .await?;
    let imported = runtime.import(&bundle, args.paused).await?;
    eprintln!(
        "imported {} ({}, {} positions) owned by {}",
        imported.id,
        imported.status,
        bundle.steps.len(),
        imported.executor_id
    );
    Ok(ExitCode::SUCCESS)
}
