//! `reprise upgrade-check` and `reprise patches`: what new code would do to the workflows in
//! flight, found by replaying their histories with nothing executed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::component::component_bytes;
use super::table::{clip, print};
use super::{StoreArgs, parse_workflow_id};
use reprise_host::runtime::replay::check::{CheckFilter, at};
use reprise_host::runtime::replay::moving::Moved;
use reprise_store::{WorkflowFilter, WorkflowStatus};

#[derive(Debug, Args)]
pub struct UpgradeCheckArgs {
    /// The new component (`.wasm`) or a guest crate directory to build.
    component: PathBuf,
    /// Only the workflows of this instance.
    #[arg(long)]
    instance: Option<String>,
    /// Only the workflows on a version whose digest starts with this; then also those the new
    /// component no longer defines (reported as `signature`).
    #[arg(long, value_name = "DIGEST")]
    from: Option<String>,
    /// Every workflow's verdict as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn upgrade_check(args: &UpgradeCheckArgs) -> anyhow::Result<ExitCode> {
    let bytes = component_bytes(&args.component)?;
    let runtime = args.store.offline_runtime().await?;
    let component = runtime.load(&bytes).await?;
    let filter = CheckFilter {
        instance: args.instance.clone(),
        from: args.from.clone(),
    };
    let started = std::time::Instant::now();
    let report = runtime.upgrade_check(component, &filter).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "component {}: {} workflow(s) in flight checked in {:.1} s, {} clean, {} not",
            report.component,
            report.checked,
            started.elapsed().as_secs_f64(),
            report.clean,
            report.checked - report.clean
        );
        if !report.groups.is_empty() {
            let rows: Vec<Vec<String>> = report
                .groups
                .iter()
                .map(|g| {
                    vec![
                        g.verdict.to_uppercase(),
                        g.workflow.clone(),
                        g.count.to_string(),
                        clip(&g.at, 100),
                        g.examples.join(", "),
                    ]
                })
                .collect();
            print(
                &["VERDICT", "WORKFLOW", "COUNT", "WHERE", "EXAMPLES"],
                &rows,
            );
        }
    }
    Ok(if report.all_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[derive(Debug, Args)]
pub struct PatchesArgs {
    /// Only the workflows of this instance.
    #[arg(long)]
    instance: Option<String>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn patches(args: &PatchesArgs) -> anyhow::Result<ExitCode> {
    let runtime = args.store.offline_runtime().await?;
    let uses = runtime.patches(args.instance.clone()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&uses)?);
        return Ok(ExitCode::SUCCESS);
    }
    if uses.is_empty() {
        println!("no workflow in flight reaches a patch");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = uses
        .iter()
        .map(|u| {
            vec![
                u.patch.clone(),
                clip(&u.app_version, 16),
                u.recorded.to_string(),
                u.old_branch.to_string(),
                u.not_reached.to_string(),
            ]
        })
        .collect();
    print(
        &[
            "PATCH",
            "VERSION",
            "NEW BRANCH",
            "OLD BRANCH",
            "NOT REACHED",
        ],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct WorkflowUpgradeArgs {
    /// The workflow to move (or `--all`).
    #[arg(value_parser = parse_workflow_id, required_unless_present = "all")]
    id: Option<String>,
    /// The new component (`.wasm`) or a guest crate directory to build.
    #[arg(long, value_name = "NEW.wasm")]
    to: PathBuf,
    /// Every workflow in flight on the version `--from` names that the new code defines.
    #[arg(long, requires = "from", conflicts_with = "id")]
    all: bool,
    /// With `--all`: the version (digest or a prefix of it) to move workflows off.
    #[arg(long, value_name = "DIGEST")]
    from: Option<String>,
    /// Only check: say what would move, change nothing.
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn workflow_upgrade(args: &WorkflowUpgradeArgs) -> anyhow::Result<ExitCode> {
    let bytes = component_bytes(&args.to)?;
    let runtime = args.store.offline_runtime().await?;
    // Stored before any workflow points at it, so every host can load it.
    let component = if args.dry_run {
        runtime.load(&bytes).await?
    } else {
        runtime.register(&bytes).await?
    };
    let ids = match (&args.id, &args.from) {
        (Some(id), _) => vec![id.clone()],
        (None, from) => {
            let defined = &component.definitions.workflows;
            let mut ids = Vec::new();
            for status in [WorkflowStatus::Pending, WorkflowStatus::Enqueued] {
                let filter = WorkflowFilter {
                    status: Some(status),
                    app_version: from.clone(),
                    ..WorkflowFilter::default()
                };
                let listed = runtime.store().list_workflows(&filter).await?;
                ids.extend(
                    listed
                        .into_iter()
                        .filter(|w| defined.contains(&w.name))
                        .map(|w| w.id),
                );
            }
            ids
        }
    };
    let mut results: Vec<Moved> = Vec::with_capacity(ids.len());
    for id in &ids {
        results.push(runtime.upgrade(id, component.clone(), args.dry_run).await?);
    }
    let done = |m: &Moved| m.verdict.is_clean() && (m.upgraded || args.dry_run || m.from == m.to);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        for moved in &results {
            let what = match (moved.upgraded, done(moved)) {
                (true, _) => "moved",
                (false, true) if moved.from == moved.to => "already on it",
                (false, true) => "would move",
                (false, false) => "not moved",
            };
            println!(
                "{}: {what} ({} -> {}): {}: {}",
                moved.id,
                clip(&moved.from, 12),
                clip(&moved.to, 12),
                moved.verdict.label(),
                at(&moved.verdict)
            );
        }
        if args.all {
            let moved = results.iter().filter(|m| done(m)).count();
            println!(
                "{moved} of {} workflow(s) {}",
                results.len(),
                if args.dry_run { "would move" } else { "moved" }
            );
        }
    }
    Ok(if results.iter().all(done) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[derive(Debug, Args)]
pub struct ComponentsArgs {
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

/// `reprise components`: every stored version, with the workflows in flight on it.
pub async fn components(args: &ComponentsArgs) -> anyhow::Result<ExitCode> {
    let store = args.store.open().await?;
    let versions = store.component_versions().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&versions)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            vec![
                v.name.clone().unwrap_or_else(|| "-".into()),
                v.digest.clone(),
                super::time::format_ms(v.first_seen),
                v.in_flight.to_string(),
                if v.in_flight == 0 { "drained" } else { "" }.into(),
            ]
        })
        .collect();
    print(&["NAME", "DIGEST", "FIRST SEEN", "IN FLIGHT", ""], &rows);
    Ok(ExitCode::SUCCESS)
}
