//! `reprise recover`: resume every PENDING workflow of this executor, on the exact component
//! version each one started on, and wait for them to finish.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use reprise_client::wire::WorkflowView;

use super::progress::Progress;
use super::{EXIT_WORKFLOW_FAILED, HostArgs};
use reprise_host::runtime::{Runtime, RuntimeEvent};
use reprise_host::server::views;
use reprise_store::WorkflowStatus;

#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// Print the recovered workflows as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pub(super) host: HostArgs,
}

pub async fn recover(args: &RecoverArgs) -> anyhow::Result<ExitCode> {
    let (runtime, _lease) = args.host.runtime().await?;
    let executor = &runtime.options().executor_id;
    let pending = runtime.store().pending_workflows(executor).await?.len();
    let progress = (pending > 1).then(|| count_endings(&runtime, pending));
    let recovered = runtime.recover().await;
    if let Some(progress) = progress {
        // The last endings are reported as they happen; give their line a moment to print.
        let abort = progress.abort_handle();
        let _ = tokio::time::timeout(Duration::from_millis(500), progress).await;
        abort.abort();
    }
    let recovered = recovered?;
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

/// Shows `total` workflows ending, as the runtime reports them (children of the recovered
/// ones end too, so the count stops at `total`).
fn count_endings(runtime: &Runtime, total: usize) -> tokio::task::JoinHandle<()> {
    let mut events = runtime.subscribe();
    tokio::spawn(async move {
        let mut progress = Progress::new("recovered", total as u64);
        let mut ended = 0;
        while ended < total {
            match events.recv().await {
                Ok(RuntimeEvent::WorkflowFinished { .. }) => {
                    ended += 1;
                    progress.inc();
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    })
}
