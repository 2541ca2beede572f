//! `reprise recover`: resume every PENDING workflow of this executor, on the exact component
//! version each one started on, and wait for them to finish.

use std::process::ExitCode;

use clap::Args;
use reprise_client::wire::WorkflowView;

use super::{Cli, EXIT_WORKFLOW_FAILED, LimitArgs};
use crate::server::views;
use crate::store::WorkflowStatus;

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Print the recovered workflows as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

pub async fn recover(cli: &Cli, args: &RecoverArgs) -> anyhow::Result<ExitCode> {
    let runtime = cli.runtime(&args.limits).await?;
    let recovered = runtime.recover().await?;
    if args.json {
        let shown: Vec<WorkflowView> = views(recovered.iter().cloned())?;
        println!("{}", serde_json::to_string_pretty(&shown)?);
    } else {
        eprintln!("recovered {} workflow(s)", recovered.len());
        super::table::print_workflows(&recovered);
    }
    let all_ok = recovered
        .iter()
        .all(|w| w.status == WorkflowStatus::Success);
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_WORKFLOW_FAILED)
    })
}
