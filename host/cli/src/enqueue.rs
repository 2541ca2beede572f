//! `reprise enqueue`: hand workflows to a running `reprise serve` through the client crate and,
//! with `--wait`, print each result as it completes, with its duration. Every copy is started
//! under a workflow id fixed before it is sent (`--id`, or one the client makes up), so the
//! client's retries after a lost answer join the stored workflow instead of duplicating it, and
//! `--wait` keeps waiting through a server restart.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::server_args::ServerArgs;
use clap::Args;
use reprise_client::wire::WorkflowStatus;
use reprise_client::{ClientError, StartOptions};

use super::progress::Progress;
use super::{parse_input, parse_workflow_id};
use crate::config::parse_duration;

#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// The queue.
    queue: String,
    /// The workflow.
    workflow: String,
    /// JSON input (a string is quoted: '"o-1"'); `{i}` in it is replaced by the copy's number
    /// (1..=count).
    #[arg(default_value = "null")]
    input: String,
    /// How many copies to enqueue.
    #[arg(long, default_value_t = 1)]
    count: u32,
    /// The instance to run on (needed when several define the workflow).
    #[arg(long)]
    instance: Option<String>,
    /// The workflow id: an existing one is joined (and, with --wait, awaited) instead of
    /// started again. With --count, `{i}` in it is replaced by the copy's number.
    #[arg(long)]
    id: Option<String>,
    /// Wait for every workflow and print its result as it completes; a lost connection or a
    /// restarting server is waited out.
    #[arg(long)]
    wait: bool,
    /// Cancel each workflow if it has not ended this long after it started (`30s`).
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// Let each wait this long on the queue before it may start.
    #[arg(long, value_parser = parse_duration)]
    delay: Option<Duration>,
    /// The partition of a partitioned queue (a tenant, say): the queue's limits hold per
    /// partition. `{i}` in it is replaced by the copy's number.
    #[arg(long)]
    partition_key: Option<String>,
    #[command(flatten)]
    server: ServerArgs,
}

pub async fn enqueue(args: &EnqueueArgs) -> anyhow::Result<ExitCode> {
    let count = args.count.max(1);
    if let Some(id) = &args.id
        && count > 1
        && !id.contains("{i}")
    {
        anyhow::bail!(
            "--id {id:?} with --count {count}: put {{i}} in it, so each copy has its own id"
        );
    }
    // Every copy's input and id are checked before the first is sent: a mistake in copy 7
    // must not leave copies 1 to 6 enqueued.
    let mut copies = Vec::new();
    for i in 1..=count {
        let text = args.input.replace("{i}", &i.to_string());
        let input = parse_input(&text)?;
        let id = args
            .id
            .as_ref()
            .map(|id| parse_workflow_id(&id.replace("{i}", &i.to_string())))
            .transpose()?;
        let partition_key = args
            .partition_key
            .as_ref()
            .map(|key| key.replace("{i}", &i.to_string()));
        copies.push((text, input, id, partition_key));
    }
    let client = args.server.client()?;
    let mut waiting = tokio::task::JoinSet::new();
    // One copy needs no progress; many show how far the enqueueing, then the waiting, got.
    let counted = count > 1;
    let mut enqueued = counted.then(|| Progress::new("enqueued", u64::from(count)));
    for (text, input, id, partition_key) in copies {
        let options = StartOptions {
            id,
            queue: Some(args.queue.clone()),
            instance: args.instance.clone(),
            timeout: args.timeout,
            delay: args.delay,
            partition_key,
            ..StartOptions::default()
        };
        let started = Instant::now();
        let handle = match client.start_with(&args.workflow, &input, &options).await {
            Ok(handle) => handle,
            Err(ClientError::InstanceRequired { instances, .. }) => anyhow::bail!(
                "workflow {:?} is defined by instances {}: choose one with --instance",
                args.workflow,
                instances.join(", ")
            ),
            Err(err) => return Err(err.into()),
        };
        if let Some(progress) = &mut enqueued {
            progress.inc();
        }
        if !args.wait {
            match &enqueued {
                Some(progress) => progress.println(handle.id()),
                None => println!("{}", handle.id()),
            }
            continue;
        }
        waiting.spawn(async move {
            let status = handle.status_at_end().await;
            (text, handle, status, started.elapsed())
        });
    }
    drop(enqueued);
    let mut finished = (counted && args.wait).then(|| Progress::new("finished", u64::from(count)));
    let mut failed = 0;
    while let Some(joined) = waiting.join_next().await {
        let (input, handle, status, took) = joined?;
        let status = status?;
        let succeeded = status.status == WorkflowStatus::Success;
        let shown = if succeeded {
            status.output.unwrap_or_default().to_string()
        } else {
            status.error.unwrap_or_default()
        };
        let line = format!(
            "{} {}({input}) {} {shown} in {} ms",
            handle.id(),
            args.workflow,
            status.status,
            took.as_millis()
        );
        match &mut finished {
            Some(progress) => {
                progress.println(&line);
                progress.inc();
            }
            None => println!("{line}"),
        }
        failed += usize::from(!succeeded);
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_WORKFLOW_FAILED)
    })
}
