//! `reprise workflow send|event|stream`: messages, events and streams from the command line,
//! on the database itself (a running host hears of a message within its poll, or at once on
//! Postgres through its notifications).

use std::process::ExitCode;
use std::time::Duration;

use super::{EXIT_WORKFLOW_FAILED, StoreArgs, parse_input};
use reprise_host::runtime::Mailbox;

/// How long `stream --follow` waits in one read before reading again.
const FOLLOW_WAIT: Duration = Duration::from_secs(30);

/// `workflow send`: prints whether the message was stored (or an earlier send with the same
/// idempotency key had stored it).
pub(super) async fn send(
    store: &StoreArgs,
    id: &str,
    topic: &str,
    message: &str,
    idempotency_key: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let message = parse_input(message)?.to_string();
    let mailbox = Mailbox::new(store.open().await?);
    let stored = mailbox
        .send_message(id, topic, &message, idempotency_key)
        .await?;
    if stored {
        eprintln!("sent to {id} on topic {topic:?}");
    } else {
        eprintln!("already sent to {id} with this idempotency key: stored once");
    }
    Ok(ExitCode::SUCCESS)
}

/// `workflow event`: prints the value, waiting up to `timeout`; exit 1 when it is not set.
pub(super) async fn event(
    store: &StoreArgs,
    id: &str,
    key: &str,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let mailbox = Mailbox::new(store.open().await?);
    match mailbox.get_event(id, key, timeout).await? {
        Some(event) => {
            println!("{}", event.value);
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!(
                "workflow {id} has not set event {key:?} (waited {} ms)",
                timeout.as_millis()
            );
            Ok(ExitCode::from(EXIT_WORKFLOW_FAILED))
        }
    }
}

/// `workflow stream`: prints the values from `offset`, one JSON value a line; with `follow`,
/// waits for more until the stream ends.
pub(super) async fn stream(
    store: &StoreArgs,
    id: &str,
    key: &str,
    mut offset: u64,
    follow: bool,
) -> anyhow::Result<ExitCode> {
    let mailbox = Mailbox::new(store.open().await?);
    let wait = if follow { FOLLOW_WAIT } else { Duration::ZERO };
    loop {
        let read = mailbox.read_stream(id, key, offset, wait).await?;
        for entry in &read.entries {
            println!("{}", entry.value);
            offset = entry.offset + 1;
        }
        let more = read.entries.len() == reprise_host::runtime::MAX_STREAM_READ as usize;
        if read.closed || !(follow || more) {
            if read.closed {
                eprintln!("stream {key:?} of {id} ended");
            }
            return Ok(ExitCode::SUCCESS);
        }
    }
}
