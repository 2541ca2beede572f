//! `[instances.NAME.steps.STEP]`: limits on one step of an instance's workflows, over every
//! host on the database — `concurrency` (executions running at once) and `rate` (executions
//! begun per window, `"50/s"`).

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::units::parse_duration;
use reprise_host::runtime::StepLimit;
use reprise_store::RateLimit;

/// One step's limits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepLimitConfig {
    /// Most executions of the step running at once.
    pub concurrency: Option<u32>,
    /// Most executions begun per window: `"50/s"`, `"600/m"`, `"10/500ms"`.
    #[serde(default, deserialize_with = "optional_rate")]
    pub rate: Option<RateLimit>,
}

impl StepLimitConfig {
    /// The runtime's form, or why the limits cannot hold.
    pub fn limit(&self, instance: &str, step: &str) -> Result<StepLimit, String> {
        if self.concurrency == Some(0) {
            return Err(format!(
                "instances.{instance}.steps.{step}: concurrency = 0 would never run the step"
            ));
        }
        if self.concurrency.is_none() && self.rate.is_none() {
            return Err(format!(
                "instances.{instance}.steps.{step}: set concurrency, rate or both"
            ));
        }
        Ok(StepLimit {
            concurrency: self.concurrency,
            rate: self.rate,
        })
    }
}

fn optional_rate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RateLimit>, D::Error> {
    let text = String::deserialize(d)?;
    parse_rate(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// `"N/s"`, `"N/m"`, `"N/h"` or `"N/<duration>"`: at most N per window.
pub fn parse_rate(text: &str) -> Result<RateLimit, String> {
    let bad = || {
        format!(
            "rate {text:?}: expected \"N/s\", \"N/m\", \"N/h\" or \"N/<duration>\" (\"50/s\", \"10/500ms\") with N > 0"
        )
    };
    let (count, window) = text.split_once('/').ok_or_else(bad)?;
    let limit: u32 = count.trim().parse().map_err(|_| bad())?;
    let period = match window.trim() {
        "s" => Duration::from_secs(1),
        "m" | "min" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        other => parse_duration(other).map_err(|_| bad())?,
    };
    if limit == 0 || period.is_zero() {
        return Err(bad());
    }
    Ok(RateLimit {
        limit,
        period_ms: i64::try_from(period.as_millis()).unwrap_or(i64::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_a_count_per_window() {
        let per = |text| parse_rate(text).map(|r| (r.limit, r.period_ms));
        assert_eq!(per("50/s"), Ok((50, 1000)));
        assert_eq!(per("600/m"), Ok((600, 60_000)));
        assert_eq!(per("3/h"), Ok((3, 3_600_000)));
        assert_eq!(per("10/500ms"), Ok((10, 500)));
        for bad in ["50", "0/s", "x/s", "5/0s", "5/fortnight"] {
            let err = parse_rate(bad).expect_err(bad);
            assert!(err.contains("expected \"N/s\""), "{bad}: {err}");
        }
    }
}
