//! A UTC instant with microsecond precision.
//!
//! Stored as microseconds since the Unix epoch so that it is cheap to copy,
//! compare, bucket into days and hours, and store as one integer column.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Microseconds in one second.
pub const MICROS_PER_SEC: i64 = 1_000_000;
/// Microseconds in one hour.
pub const MICROS_PER_HOUR: i64 = 3_600 * MICROS_PER_SEC;
/// Microseconds in one day.
pub const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

/// A UTC instant, microseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub i64);

/// A timestamp string that no supported layout could read.
#[derive(Debug, thiserror::Error)]
#[error(
    "unrecognised timestamp {0:?} (expected RFC 3339, `YYYY-MM-DD HH:MM:SS[.f]`, a date, or epoch seconds)"
)]
pub struct TimeParseError(pub String);

impl Time {
    /// Seconds since the epoch, fractional part included.
    pub fn from_epoch_secs_f64(secs: f64) -> Option<Time> {
        if !secs.is_finite() || secs.abs() > 1e13 {
            return None;
        }
        Some(Time((secs * MICROS_PER_SEC as f64).round() as i64))
    }

    pub fn from_epoch_secs(secs: i64) -> Time {
        Time(secs.saturating_mul(MICROS_PER_SEC))
    }

    pub fn as_micros(self) -> i64 {
        self.0
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / MICROS_PER_SEC as f64
    }

    /// Days since the epoch: the bucket sightings roll up into.
    pub fn day(self) -> i64 {
        self.0.div_euclid(MICROS_PER_DAY)
    }

    /// Hours since the epoch: the bucket archive segments are cut by.
    pub fn hour(self) -> i64 {
        self.0.div_euclid(MICROS_PER_HOUR)
    }

    /// The current time.
    pub fn now() -> Time {
        Time(jiff::Timestamp::now().as_microsecond())
    }

    /// Parses the layouts telemetry and intel really use: RFC 3339 with any
    /// offset, `YYYY-MM-DD HH:MM:SS[.fff]` (Sysmon's `UtcTime`, taken as UTC),
    /// a bare date (midnight UTC), and epoch seconds (Zeek's `ts`).
    pub fn parse(text: &str) -> Result<Time, TimeParseError> {
        let s = text.trim();
        if let Ok(ts) = s.parse::<jiff::Timestamp>() {
            return Ok(Time(ts.as_microsecond()));
        }
        if let Ok(dt) = s.parse::<jiff::civil::DateTime>()
            && let Ok(ts) = dt.to_zoned(jiff::tz::TimeZone::UTC)
        {
            return Ok(Time(ts.timestamp().as_microsecond()));
        }
        if let Ok(date) = s.parse::<jiff::civil::Date>()
            && let Ok(ts) = date.to_zoned(jiff::tz::TimeZone::UTC)
        {
            return Ok(Time(ts.timestamp().as_microsecond()));
        }
        if !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && let Ok(secs) = s.parse::<f64>()
            && let Some(t) = Time::from_epoch_secs_f64(secs)
        {
            return Ok(t);
        }
        Err(TimeParseError(text.chars().take(64).collect()))
    }

    /// RFC 3339 in UTC with the shortest exact fraction.
    pub fn to_rfc3339(self) -> String {
        self.to_string()
    }

    /// `YYYY-MM-DD` of this instant in UTC.
    pub fn date_string(self) -> String {
        match jiff::Timestamp::from_microsecond(self.0) {
            Ok(ts) => ts.to_zoned(jiff::tz::TimeZone::UTC).date().to_string(),
            Err(_) => format!("@{}", self.0),
        }
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match jiff::Timestamp::from_microsecond(self.0) {
            Ok(ts) => write!(f, "{ts}"),
            Err(_) => write!(f, "@{}us", self.0),
        }
    }
}

impl FromStr for Time {
    type Err = TimeParseError;
    fn from_str(s: &str) -> Result<Time, TimeParseError> {
        Time::parse(s)
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Time::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_layouts_in_the_wild() {
        let rfc = Time::parse("2023-03-22T10:15:30.5Z").unwrap();
        assert_eq!(rfc.to_string(), "2023-03-22T10:15:30.5Z");
        assert_eq!(Time::parse("2023-03-22 10:15:30.500").unwrap(), rfc);
        assert_eq!(Time::parse("2023-03-22T12:15:30.5+02:00").unwrap(), rfc);
        assert_eq!(Time::parse("1679480130.5").unwrap(), rfc);
        assert_eq!(
            Time::parse("2023-03-22").unwrap().to_string(),
            "2023-03-22T00:00:00Z"
        );
        assert!(Time::parse("yesterday").is_err());
        assert!(Time::parse("").is_err());
    }

    #[test]
    fn buckets_by_day_and_hour_in_utc() {
        let t = Time::parse("2023-03-22T23:59:59Z").unwrap();
        let u = Time::parse("2023-03-23T00:00:00Z").unwrap();
        assert_eq!(t.day() + 1, u.day());
        assert_eq!(t.hour() + 1, u.hour());
        assert_eq!(Time(-1).day(), -1);
        assert_eq!(t.date_string(), "2023-03-22");
    }
}
