//! `reprise recover`: resume every PENDING workflow of this executor, on the exact component
//! version each one started on, and wait for them to finish.

use std::process::ExitCode;

use clap::Args;

use reprise_client::wire::WorkflowView;

use super::{EXIT_WORKFLOW_FAILED, HostArgs};
use crate::server::views;
use crate::store::WorkflowStatus;

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Print the recovered workflows as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pub(super) host: HostArgs,
}

pub async fn recover(args: &RecoverArgs) -> anyhow::Result<ExitCode> {
    let runtime = args.host.runtime().await?;
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
