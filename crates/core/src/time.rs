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
        if let Some(t) = parse_plain_rfc3339(s.as_bytes()) {
            return Ok(t);
        }
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

/// Times are RFC 3339 text in UTC.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Time {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Time {}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Time::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The layout nearly every telemetry timestamp has,
/// `YYYY-MM-DD[T ]HH:MM:SS[.f{1,9}][Z|±HH:MM]` at or after the epoch, read
/// without the general parser (it was most of the time spent mapping an
/// ECS event). Anything else, leap seconds and pre-1970 instants included,
/// returns `None` and goes to the general parser, which gives the same
/// answer for what this accepts.
fn parse_plain_rfc3339(s: &[u8]) -> Option<Time> {
    fn digits(s: &[u8], at: usize, n: usize) -> Option<i64> {
        let mut v = 0i64;
        for &b in s.get(at..at + n)? {
            if !b.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(b - b'0');
        }
        Some(v)
    }
    if s.len() < 19 || s[4] != b'-' || s[7] != b'-' || s[13] != b':' || s[16] != b':' {
        return None;
    }
    if s[10] != b'T' && s[10] != b' ' {
        return None;
    }
    let (year, month, day) = (digits(s, 0, 4)?, digits(s, 5, 2)?, digits(s, 8, 2)?);
    let (hour, minute, second) = (digits(s, 11, 2)?, digits(s, 14, 2)?, digits(s, 17, 2)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut at = 19;
    let mut micros = 0i64;
    if s.get(at) == Some(&b'.') {
        let start = at + 1;
        let mut end = start;
        while end < s.len() && s[end].is_ascii_digit() {
            end += 1;
        }
        let n = end - start;
        if !(1..=9).contains(&n) {
            return None;
        }
        // Beyond microseconds the digits are truncated, as the general
        // parser's `as_microsecond` does for instants after the epoch.
        let kept = n.min(6);
        micros = digits(s, start, kept)? * 10i64.pow((6 - kept) as u32);
        at = end;
    }
    let offset_secs = match &s[at..] {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(s, at + 1, 2)?, digits(s, at + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3_600 + m * 60;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second
        - offset_secs;
    (secs >= 0).then(|| Time(secs * MICROS_PER_SEC + micros))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

    /// The general parser alone, for comparison with the fast path.
    fn parse_general(s: &str) -> Option<Time> {
        if let Ok(ts) = s.parse::<jiff::Timestamp>() {
            return Some(Time(ts.as_microsecond()));
        }
        let dt = s.parse::<jiff::civil::DateTime>().ok()?;
        let ts = dt.to_zoned(jiff::tz::TimeZone::UTC).ok()?;
        Some(Time(ts.timestamp().as_microsecond()))
    }

    #[test]
    fn the_plain_rfc3339_path_agrees_with_the_general_parser() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let zones = [
            "", "Z", "z", "+00:00", "+05:30", "-08:00", "+23:59", "-00:00",
        ];
        let mut accepted = 0;
        for _ in 0..20_000 {
            // Out-of-range fields on purpose: both must refuse them alike.
            let (y, mo, d) = (1960 + next(120), next(14), next(33));
            let (h, mi, s) = (next(25), next(61), next(61));
            let sep = if next(2) == 0 { 'T' } else { ' ' };
            let frac = match next(4) {
                0 => String::new(),
                1 => format!(".{}", next(10)),
                2 => format!(".{:06}", next(1_000_000)),
                _ => format!(".{:09}", next(1_000_000_000)),
            };
            let zone = zones[next(zones.len() as u64) as usize];
            let text = format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{frac}{zone}");
            if let Some(fast) = parse_plain_rfc3339(text.as_bytes()) {
                accepted += 1;
                assert_eq!(Some(fast), parse_general(&text), "{text}");
            }
        }
        assert!(accepted > 5_000, "the fast path took only {accepted}");
        for refused in [
            "2023-02-29T00:00:00Z",
            "2023-03-22T24:00:00Z",
            "2023-03-22T10:15:60Z",
            "2023-03-22T10:15:30.Z",
            "2023-03-22T10:15:30.1234567890Z",
            "2023-03-22T10:15:30+0200",
            "1969-12-31T23:59:59Z",
            "2023-03-22T10:15:30Z ",
        ] {
            assert_eq!(parse_plain_rfc3339(refused.as_bytes()), None, "{refused}");
        }
        assert_eq!(
            parse_plain_rfc3339(b"2024-02-29T12:00:00.000001Z"),
            parse_general("2024-02-29T12:00:00.000001Z")
        );
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
