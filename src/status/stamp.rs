//! Event identity and time: `at` timestamps and monotonic ULID `event_id`s.
//!
//! `at` is written like Python's `datetime.now(timezone.utc).isoformat()`:
//! `2026-11-24T10:19:07.327864+00:00`. Unlike Python we always write the six
//! microsecond digits (Python drops `.000000` when the microsecond is zero);
//! both forms parse the same and keep string order equal to time order.
//!
//! An [`EventStamper`] hands out `(at, event_id)` pairs for one batch of events:
//! `at` strictly increases by at least 1 µs per event and the ULIDs are
//! monotonic, as upstream's two-event `start-implementation` batch is.

use jiff::Timestamp;
use jiff::tz::Offset;

/// `at` + `event_id` for one new event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`
    pub at: String,
    /// 26-character Crockford base32 ULID.
    pub event_id: String,
}

/// Formats a timestamp as upstream's `at` (UTC, microseconds, `+00:00`).
pub fn format_at(ts: Timestamp) -> String {
    let dt = Offset::UTC.to_datetime(ts);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.subsec_nanosecond() / 1_000
    )
}

/// `true` when `text` is a 26-character Crockford ULID (`^[0-9A-HJKMNP-TV-Z]{26}$`,
/// the pattern upstream validates annotation ids with).
pub fn is_ulid(text: &str) -> bool {
    text.len() == 26
        && text.bytes().all(|b| {
            b.is_ascii_digit()
                || (b.is_ascii_uppercase() && !matches!(b, b'I' | b'L' | b'O' | b'U'))
        })
}

/// Issues strictly increasing `at` values and monotonic ULIDs for a batch.
#[derive(Debug, Default)]
pub struct EventStamper {
    ulids: ulid::Generator,
    last_micros: Option<i128>,
}

impl EventStamper {
    /// A fresh stamper (use one per batch of events written together).
    pub fn new() -> Self {
        Self::default()
    }

    /// Stamp for an event happening now.
    pub fn stamp(&mut self) -> Stamp {
        self.stamp_at(Timestamp::now())
    }

    /// Stamp for an event at `now` (clamped to 1 µs after the previous stamp).
    pub fn stamp_at(&mut self, now: Timestamp) -> Stamp {
        let mut micros = now.as_microsecond() as i128;
        if let Some(last) = self.last_micros
            && micros <= last
        {
            micros = last + 1;
        }
        self.last_micros = Some(micros);
        let ts = i64::try_from(micros)
            .ok()
            .and_then(|m| Timestamp::from_microsecond(m).ok())
            .unwrap_or(now);
        let system_time =
            std::time::SystemTime::try_from(ts).unwrap_or_else(|_| std::time::SystemTime::now());
        let id = match self.ulids.generate_from_datetime(system_time) {
            Ok(id) => id,
            // 2^80 ids within one millisecond: keep monotonic by carrying into the time part.
            Err(overflow) => overflow.commit_overflow_increment(),
        };
        Stamp {
            at: format_at(ts),
            event_id: id.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_has_microseconds_and_utc_offset() {
        let ts: Timestamp = "2026-11-24T10:19:07.327864Z".parse().unwrap();
        assert_eq!(format_at(ts), "2026-11-24T10:19:07.327864+00:00");
        let whole: Timestamp = "2026-11-24T10:19:07Z".parse().unwrap();
        assert_eq!(format_at(whole), "2026-11-24T10:19:07.000000+00:00");
    }

    #[test]
    fn batch_is_strictly_increasing_even_with_a_frozen_clock() {
        let now: Timestamp = "2026-11-24T10:19:07.327864Z".parse().unwrap();
        let mut stamper = EventStamper::new();
        let stamps: Vec<Stamp> = (0..5).map(|_| stamper.stamp_at(now)).collect();
        assert_eq!(stamps[0].at, "2026-11-24T10:19:07.327864+00:00");
        assert_eq!(stamps[1].at, "2026-11-24T10:19:07.327865+00:00");
        for pair in stamps.windows(2) {
            assert!(pair[0].at < pair[1].at);
            assert!(pair[0].event_id < pair[1].event_id);
        }
        for s in &stamps {
            assert!(is_ulid(&s.event_id), "{}", s.event_id);
        }
    }

    #[test]
    fn ulid_pattern() {
        assert!(is_ulid("01M86H1ZNZ8GNJH6D2PX3CH57B"));
        assert!(!is_ulid("01M86H1ZNZ8GNJH6D2PX3CH57"));
        assert!(!is_ulid("01M86H1ZNZ8GNJH6D2PX3CH57I"));
        assert!(!is_ulid("01m86h1znz8gnjh6d2px3ch57b"));
    }
}
