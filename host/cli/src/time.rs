//! Times on the command line: tables show UTC date-times, and the `--created-after` /
//! `--created-before` filters take that form, a date, milliseconds since the epoch (as the API
//! does), or a duration ago (`2h`).

use crate::config::parse_duration;
use reprise_store::now_ms;

/// `2024-05-01 12:34:56` (UTC) for milliseconds since the epoch.
pub fn format_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// A time filter in milliseconds since the epoch.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    if let Some(ms) = parse_date_time(text) {
        return Ok(ms);
    }
    if let Ok(ago) = parse_duration(text) {
        return Ok(now_ms().saturating_sub(i64::try_from(ago.as_millis()).unwrap_or(i64::MAX)));
    }
    Err(format!(
        "{text:?} is not a time: give a UTC date (2024-05-01) or date-time \
         (2024-05-01 12:00:00), milliseconds since the epoch, or a duration ago (2h)"
    ))
}

/// `YYYY-MM-DD`, optionally with ` HH:MM[:SS]` or `THH:MM[:SS]` and a trailing `Z`, in UTC.
fn parse_date_time(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let seconds = match time {
        None => 0,
        Some(time) => {
            let fields: Vec<i64> = time
                .split(':')
                .map(|f| f.parse().ok())
                .collect::<Option<_>>()?;
            let (h, m, s) = match fields.as_slice() {
                [h, m] => (*h, *m, 0),
                [h, m, s] => (*h, *m, *s),
                _ => return None,
            };
            if !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..60).contains(&s) {
                return None;
            }
            h * 3600 + m * 60 + s
        }
    };
    Some((days_from_civil(year, month, day) * 86_400 + seconds) * 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day since 1970-01-01 (the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = (shifted_month + 2) % 12 + 1;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format_and_parse_both_ways() {
        assert_eq!(format_ms(0), "1970-01-01 00:00:00");
        assert_eq!(format_ms(1_709_210_096_000), "2024-02-29 12:34:56");
        assert_eq!(parse_time("2024-02-29 12:34:56"), Ok(1_709_210_096_000));
        assert_eq!(parse_time("2024-02-29T12:34:56Z"), Ok(1_709_210_096_000));
        assert_eq!(parse_time("2024-02-29"), Ok(1_709_164_800_000));
        assert_eq!(parse_time("1709210096000"), Ok(1_709_210_096_000));
        for day in [-800_000, -1, 0, 59, 60, 365, 11_016, 19_782, 2_932_896] {
            let (y, m, d) = civil_from_days(day);
            let (m, d) = (
                u32::try_from(m).expect("month"),
                u32::try_from(d).expect("day"),
            );
            assert_eq!(days_from_civil(y, m, d), day, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn a_duration_is_that_long_ago_and_nonsense_is_refused() {
        let two_hours_ago = parse_time("2h").expect("duration");
        assert!((now_ms() - two_hours_ago - 7_200_000).abs() < 5_000);
        let err = parse_time("yesterday").expect_err("nonsense");
        assert!(
            err.contains("\"yesterday\"") && err.contains("2024-05-01"),
            "{err}"
        );
        assert!(parse_time("2024-13-01").is_err());
        assert!(parse_time("2024-01-01 25:00").is_err());
    }
}
