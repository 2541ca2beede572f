//! When a schedule fires: its cron expression (with seconds, in UTC) and its catch-up rule
//! decide which scheduled times are due now. Pure: the scheduler asks, this answers.

use std::str::FromStr;

use chrono::{DateTime, Utc};

use reprise_store::CatchUp;

/// A firing this late is not "missed": the poll, or a busy host, made it late.
pub const GRACE_MS: i64 = 2_000;
/// Most firings one pass starts for one schedule; the next pass goes on.
pub const MAX_FIRINGS: usize = 1_000;

/// A parsed cron expression.
#[derive(Debug, Clone)]
pub struct Cron(cron::Schedule);

/// Parses `sec min hour day-of-month month day-of-week [year]`, as the `cron` crate reads it.
pub fn parse(expression: &str) -> Result<Cron, String> {
    cron::Schedule::from_str(expression).map(Cron).map_err(|e| {
        format!(
            "cron expression {expression:?} does not parse ({e}): it takes seconds first, \
                 as in \"0 0 2 * * *\" for 02:00:00 UTC every day"
        )
    })
}

fn at(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

impl Cron {
    /// The scheduled times in `(after, until]`, oldest first, at most `max`.
    pub fn times(&self, after: i64, until: i64, max: usize) -> Vec<i64> {
        let Some(start) = at(after) else {
            return Vec::new();
        };
        self.0
            .after(&start)
            .map(|t| t.timestamp_millis())
            .take_while(|&t| t <= until)
            .take(max)
            .collect()
    }

    /// The first scheduled time after `after`.
    pub fn next_after(&self, after: i64) -> Option<i64> {
        self.0
            .after(&at(after)?)
            .next()
            .map(|t| t.timestamp_millis())
    }
}

/// What a schedule does now: the times to fire, and where its last firing moves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// Scheduled times to start a workflow for, oldest first.
    pub fire: Vec<i64>,
    /// The new last firing (missed times skipped count as passed); `None`: unchanged.
    pub advance_to: Option<i64>,
}

/// The firings due at `now` for a schedule last fired (or added) at `last`.
pub fn due(cron: &Cron, last: i64, now: i64, catch_up: CatchUp) -> Due {
    // Skipping starts at the grace period: older times are passed over, not looked at.
    let from = match catch_up {
        CatchUp::All => last,
        CatchUp::Skip => last.max(now - GRACE_MS - 1),
    };
    let fire = cron.times(from, now, MAX_FIRINGS);
    // Moved past missed times only when there were some: a schedule with nothing due keeps
    // its last firing, rather than creeping forward at every look.
    let skipped = from > last && cron.next_after(last).is_some_and(|next| next <= from);
    let advance_to = fire.last().copied().or(skipped.then_some(from));
    Due { fire, advance_to }
}

/// The workflow id of a schedule's firing for `scheduled` (ms): the same in every process,
/// so a firing starts one workflow however many hosts fire it.
pub fn firing_id(schedule: &str, scheduled: i64) -> String {
    format!("{schedule}@{scheduled}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000;

    #[test]
    fn expressions_take_seconds_and_bad_ones_say_how() {
        let every_second = parse("* * * * * *").expect("parses");
        assert_eq!(every_second.times(0, 3 * SECOND, 10), [1000, 2000, 3000]);
        assert_eq!(every_second.next_after(1_500), Some(2_000));
        let err = parse("0 0 * *").expect_err("too short");
        assert!(err.contains("seconds first"), "{err}");
    }

    #[test]
    fn skip_drops_missed_firings_and_all_runs_them() {
        let every_second = parse("* * * * * *").expect("parses");
        // Down for ten seconds, back at 10.5 s.
        let skipped = due(&every_second, 0, 10_500, CatchUp::Skip);
        assert_eq!(skipped.fire, [9_000, 10_000], "only those within the grace");
        assert_eq!(skipped.advance_to, Some(10_000));
        let all = due(&every_second, 0, 10_500, CatchUp::All);
        assert_eq!(all.fire, (1..=10).map(|s| s * SECOND).collect::<Vec<_>>());
        assert_eq!(all.advance_to, Some(10_000));
        let nothing = due(&every_second, 10_000, 10_500, CatchUp::Skip);
        assert_eq!(
            nothing,
            Due {
                fire: vec![],
                advance_to: None
            }
        );
    }

    #[test]
    fn a_schedule_with_nothing_due_keeps_its_last_firing() {
        let daily = parse("0 0 2 * * *").expect("parses");
        // Added at 0, looked at every few seconds for a minute: nothing was due or missed.
        for now in (2..60).map(|s| s * SECOND) {
            assert_eq!(
                due(&daily, 0, now, CatchUp::Skip).advance_to,
                None,
                "at {now}"
            );
        }
    }

    #[test]
    fn a_firing_id_names_the_schedule_and_the_time() {
        assert_eq!(firing_id("nightly", 86_400_000), "nightly@86400000");
        assert!(crate::runtime::validate_workflow_id(&firing_id("a-b_c", 1)).is_ok());
    }
}
