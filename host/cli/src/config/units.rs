//! Durations and sizes as `reprise.toml` and the CLI write them: `30s`, `500ms`, `64MiB`, or a
//! bare number (milliseconds, bytes).

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A size: a number of bytes or text like `64MiB`.
#[derive(Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Bytes(u64),
    Text(String),
}

pub(super) fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match SizeValue::deserialize(d)? {
        SizeValue::Bytes(n) => Ok(n),
        SizeValue::Text(text) => parse_size(&text).map_err(serde::de::Error::custom),
    }
}

pub(super) fn optional_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

pub(super) fn optional_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    size(d).map(Some)
}

/// A duration: milliseconds as a number, or text like `500ms`, `30s`, `2m`.
pub(super) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match SizeValue::deserialize(d)? {
        SizeValue::Bytes(ms) => Ok(Duration::from_millis(ms)),
        SizeValue::Text(text) => parse_duration(&text).map_err(serde::de::Error::custom),
    }
}

/// Splits `64MiB` into `(64, "MiB")`; `example` shows a valid value in the error.
fn number_and_unit<'t>(text: &'t str, example: &str) -> Result<(u64, &'t str), String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number = number
        .parse()
        .map_err(|_| format!("{text:?} is not a number with a unit (try {example})"))?;
    Ok((number, unit.trim()))
}

/// Parses `500ms`, `30s`, `2m`, `1h`, `30d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (n, unit) = number_and_unit(text, "30s or 500ms")?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        "d" => Duration::from_secs(n * 86_400),
        other => {
            return Err(format!(
                "unknown duration unit {other:?} (use ms, s, m, h or d)"
            ));
        }
    })
}

/// Parses `64MiB`, `1GiB`, `512KiB`, `1000000` into bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (number, unit) = number_and_unit(text, "64MiB")?;
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB or GiB)")),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{text:?} is too large"))
}
