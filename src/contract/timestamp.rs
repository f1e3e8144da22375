//! `Timestamp`: the wire form of every `date-time` in the contract.
//!
//! Upstream writes `datetime.now(timezone.utc).isoformat()`, for example
//! `2026-04-06T12:00:00.123456+00:00`: UTC, always six fractional digits, `+00:00` rather than
//! `Z`. That is what this type writes. It reads any RFC 3339 timestamp with an offset (`Z` or
//! `±hh:mm`, any precision) and refuses naive or date-only values.

use std::fmt;
use std::str::FromStr;

/// A UTC instant, serialized as upstream writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(jiff::Timestamp);

impl Timestamp {
    /// The current time, truncated to microseconds (the precision upstream writes).
    pub fn now() -> Self {
        Self::from_jiff(jiff::Timestamp::now())
    }

    /// Wrap a jiff timestamp, truncated to microseconds.
    pub fn from_jiff(ts: jiff::Timestamp) -> Self {
        let micros = ts.as_microsecond();
        Self(jiff::Timestamp::from_microsecond(micros).unwrap_or(ts))
    }

    pub fn as_jiff(self) -> jiff::Timestamp {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00"))
    }
}

/// Why a timestamp was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid timestamp '{input}': expected RFC 3339 with an offset, like 2026-04-06T12:00:00.123456+00:00"
)]
pub struct TimestampError {
    input: String,
}

impl FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // jiff's Timestamp parser requires an offset (Z or ±hh:mm) and refuses naive values.
        match s.parse::<jiff::Timestamp>() {
            Ok(ts)
                if s.len() > 10
                    && s.as_bytes()
                        .get(10)
                        .is_some_and(|b| *b == b'T' || *b == b't') =>
            {
                Ok(Self::from_jiff(ts))
            }
            _ => Err(TimestampError {
                input: s.chars().take(64).collect(),
            }),
        }
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_upstreams_isoformat() {
        let ts: Timestamp = "2026-04-06T12:00:00.123456789Z".parse().unwrap();
        assert_eq!(ts.to_string(), "2026-04-06T12:00:00.123456+00:00");
        let ts: Timestamp = "2026-01-15T10:00:00Z".parse().unwrap();
        assert_eq!(ts.to_string(), "2026-01-15T10:00:00.000000+00:00");
    }

    #[test]
    fn reads_offsets_and_round_trips() {
        let ts: Timestamp = "2026-01-15T12:00:00+02:00".parse().unwrap();
        assert_eq!(ts.to_string(), "2026-01-15T10:00:00.000000+00:00");
        let again: Timestamp = ts.to_string().parse().unwrap();
        assert_eq!(ts, again);
    }

    #[test]
    fn refuses_naive_date_only_and_garbage() {
        for bad in [
            "2026-01-15T10:00:00",
            "2026-01-15",
            "not-a-date",
            "",
            "2026-01-15 10:00:00+00:00",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn now_is_microsecond_precise() {
        let ts = Timestamp::now();
        assert_eq!(ts.as_jiff().subsec_nanosecond() % 1000, 0);
    }
}
