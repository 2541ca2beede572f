//! A database that fails for a moment (locked by another process, busy, a lost serialization
//! conflict, a dropped connection) does not abandon a drive: it is driven again, by recovery
//! from its last commit, after a pause that grows up to [`LONGEST`]. In the background that
//! goes on while the host lives; a foreground drive (`reprise run`) gives up after a bound and
//! says the workflow stays `PENDING`. A retry recovers the workflow only while this executor
//! still owns it: one adopted meanwhile by another host is left to it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::runtime::drive::{Begin, Driven, drive_until_parked};
use crate::runtime::error::RuntimeError;
use crate::runtime::shared::Shared;

/// The first pause after a transient failure; each next one doubles.
const FIRST: Duration = Duration::from_millis(50);
/// The longest pause between two tries.
const LONGEST: Duration = Duration::from_secs(5);

/// [`drive_until_parked`], tried again after transient database failures until `bound` has
/// passed (never, without one).
pub(crate) async fn until_parked(
    shared: &Arc<Shared>,
    begin: Begin,
    bound: Option<Duration>,
) -> Result<Driven, RuntimeError> {
    let id = begin.id().to_string();
    // A new workflow not written yet runs again from its start; once written, from its row.
    let unwritten = match &begin {
        Begin::Unwritten(unwritten) => Some(unwritten.clone()),
        _ => None,
    };
    let started = Instant::now();
    let mut pause = FIRST;
    let mut begin = begin;
    loop {
        match drive_until_parked(shared, begin).await {
            Err(err) if err.is_transient() && bound.is_none_or(|b| started.elapsed() < b) => {
                let retry_in_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX);
                tracing::warn!(workflow_id = %id, retry_in_ms, "the database failed for a moment; the workflow is driven again from its last commit: {err}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LONGEST);
                begin = match &unwritten {
                    Some(unwritten) if !unwritten.is_written() => {
                        Begin::Unwritten(unwritten.clone())
                    }
                    _ => Begin::Id(id.clone()),
                };
            }
            other => return other,
        }
    }
}
