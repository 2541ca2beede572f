//! `reprise schedule list|add|pause|resume|delete|trigger|backfill`: a running server's
//! schedules, through its admin API (a schedule's firings need the server's components).

use std::process::ExitCode;

use clap::Subcommand;
use reprise_client::wire::{CatchUp, ScheduleBody, ScheduleView};

use super::parse_input;
use super::server_args::ServerArgs;
use super::table::print;
use super::time::{format_ms, parse_time};

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// List the schedules with their next firing.
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Add a schedule.
    Add {
        /// The schedule's name: its firings' workflow ids start with it.
        name: String,
        /// A cron expression with seconds, in UTC: "0 0 2 * * *" is 02:00:00 every day.
        #[arg(long)]
        cron: String,
        /// The workflow each firing starts.
        #[arg(long)]
        workflow: String,
        /// The configured instance to run on; needed when several define the workflow.
        #[arg(long)]
        instance: Option<String>,
        /// The input each firing gets, as JSON.
        #[arg(long, default_value = "null")]
        input: String,
        /// Enqueue each firing on this queue instead of starting it at once.
        #[arg(long)]
        queue: Option<String>,
        /// After downtime: skip the missed firings, or run all of them.
        #[arg(long, default_value = "skip", value_parser = ["skip", "all"])]
        catch_up: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Stop a schedule firing until it is resumed.
    Pause {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Let a paused schedule fire again (from its next time on).
    Resume {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Delete a schedule; the workflows it started stay.
    Delete {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Fire a schedule now, paused or not; prints the workflow id.
    Trigger {
        name: String,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Fire every time of a schedule between `--from` and `--to` that has not fired; prints
    /// the workflow ids.
    Backfill {
        name: String,
        /// A UTC date or date-time, milliseconds since the epoch, or a duration ago (`2h`).
        #[arg(long, value_parser = parse_time)]
        from: i64,
        /// The end (exclusive), in the same forms [default: now].
        #[arg(long, value_parser = parse_time)]
        to: Option<i64>,
        #[command(flatten)]
        server: ServerArgs,
    },
}

pub async fn schedule(command: &ScheduleCommand) -> anyhow::Result<ExitCode> {
    match command {
        ScheduleCommand::List { json, server } => {
            let schedules = server.client()?.schedules().await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&schedules)?);
            } else {
                print_schedules(&schedules);
            }
        }
        ScheduleCommand::Add {
            name,
            cron,
            workflow,
            instance,
            input,
            queue,
            catch_up,
            server,
        } => {
            let body = ScheduleBody {
                name: name.clone(),
                cron: cron.clone(),
                workflow: workflow.clone(),
                instance: instance.clone(),
                input: parse_input(input)?,
                queue: queue.clone(),
                catch_up: catch_up.parse::<CatchUp>().map_err(anyhow::Error::msg)?,
            };
            let added = server.client()?.add_schedule(&body).await?;
            print_schedules(&[added]);
        }
        ScheduleCommand::Pause { name, server } | ScheduleCommand::Resume { name, server } => {
            let paused = matches!(command, ScheduleCommand::Pause { .. });
            let schedule = server.client()?.pause_schedule(name, paused).await?;
            print_schedules(&[schedule]);
        }
        ScheduleCommand::Delete { name, server } => {
            server.client()?.delete_schedule(name).await?;
            eprintln!("deleted schedule {name}");
        }
        ScheduleCommand::Trigger { name, server } => {
            for id in server.client()?.trigger_schedule(name).await? {
                println!("{id}");
            }
        }
        ScheduleCommand::Backfill {
            name,
            from,
            to,
            server,
        } => {
            let to = to.unwrap_or_else(reprise_store::now_ms);
            let ids = server.client()?.backfill_schedule(name, *from, to).await?;
            for id in &ids {
                println!("{id}");
            }
            eprintln!("{} firing(s) of {name}", ids.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_schedules(schedules: &[ScheduleView]) {
    let time = |ms: Option<i64>| ms.map(format_ms).unwrap_or_else(|| "-".into());
    let rows: Vec<Vec<String>> = schedules
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.cron.clone(),
                format!("{} on {}", s.workflow, s.instance),
                if s.paused {
                    "paused".into()
                } else {
                    "active".into()
                },
                time(s.last_fired),
                time(s.next_fire),
            ]
        })
        .collect();
    print(
        &["NAME", "CRON", "WORKFLOW", "STATE", "LAST FIRED", "NEXT"],
        &rows,
    );
}
