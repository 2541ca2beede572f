//! `reprise executors`: the executors that took a lease on the database, how long ago each
//! renewed it, and the `PENDING` workflows each owns.

use std::process::ExitCode;

use clap::Args;

use super::StoreArgs;
use super::table;
use super::time::format_ms;
use reprise_host::server::executor_views;

#[derive(Debug, Args)]
pub struct ExecutorsArgs {
    /// As JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn executors(args: &ExecutorsArgs) -> anyhow::Result<ExitCode> {
    let views = executor_views(args.store.open().await?.executors(None).await?);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = views
        .iter()
        .map(|e| {
            vec![
                e.executor_id.clone(),
                if e.expired { "EXPIRED" } else { "LIVE" }.to_string(),
                format!("{} ms", e.lease_age_ms),
                format!("{} ms", e.lease_ms),
                e.pending.to_string(),
                format_ms(e.started_at),
            ]
        })
        .collect();
    table::print(
        &[
            "EXECUTOR",
            "LEASE",
            "RENEWED AGO",
            "LEASE LENGTH",
            "PENDING",
            "STARTED (UTC)",
        ],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}
