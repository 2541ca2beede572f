//! `reprise workflow list --watch`: the listing kept current. On a terminal it is redrawn in
//! place at each interval; elsewhere it is printed again only when it changed, so a log of it
//! shows each change once.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use reprise_client::wire::WorkflowView;

use super::table::print_workflows;
use super::time::format_ms;
use reprise_host::server::views;
use reprise_store::{Store, WorkflowFilter, now_ms};

/// Lists `filter`'s workflows every `every` until interrupted (Ctrl-C ends it with success).
pub async fn watch(
    store: Arc<dyn Store>,
    filter: &WorkflowFilter,
    every: Duration,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let terminal = std::io::stdout().is_terminal();
    let mut shown = None;
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
        }
        let workflows = store.list_workflows(filter).await?;
        if !terminal && shown.as_ref() == Some(&workflows) {
            continue;
        }
        if terminal {
            // Home and clear: the listing replaces the last one.
            print!("\x1b[H\x1b[2J");
            println!(
                "every {} ms, at {} (Ctrl-C to stop)\n",
                every.as_millis(),
                format_ms(now_ms())
            );
        }
        if json {
            let views: Vec<WorkflowView> = views(workflows.iter().cloned())?;
            println!("{}", serde_json::to_string(&views)?);
        } else {
            if !terminal && shown.is_some() {
                println!("--- {}", format_ms(now_ms()));
            }
            print_workflows(&workflows);
        }
        shown = Some(workflows);
    }
}
