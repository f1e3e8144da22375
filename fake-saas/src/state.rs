//! The server's shared state: users, tokens, queued faults, the event store
//! and the logs the test API reads. One `std::sync::Mutex` guards it all; a
//! poisoned lock is recovered rather than propagated.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use crate::{Fault, RequestLog, Route, Tokens};

pub(crate) const ACCESS_LIFETIME: u64 = 900;
pub(crate) const REFRESH_LIFETIME: u64 = 604_800;

#[derive(Default)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// The tracker endpoints' state (`crate::tracker`), under its own lock.
    pub(crate) tracker: Mutex<crate::tracker::TrackerState>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn add_user(&self, username: &str, password: &str, team_slug: Option<&str>) {
        self.lock().users.insert(
            username.to_owned(),
            User {
                password: password.to_owned(),
                team_slug: team_slug.map(str::to_owned),
            },
        );
    }
}

pub(crate) struct User {
    pub(crate) password: String,
    pub(crate) team_slug: Option<String>,
}

/// What happened to one event offered for storage.
pub(crate) enum Ingest {
    Stored,
    Duplicate,
    Rejected(String),
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) users: HashMap<String, User>,
    /// Valid access tokens → username.
    pub(crate) access: HashMap<String, String>,
    /// Valid refresh tokens → username.
    pub(crate) refresh: HashMap<String, String>,
    /// Unused WebSocket tokens.
    pub(crate) ws_tokens: HashSet<String>,
    pub(crate) faults: HashMap<Route, VecDeque<Fault>>,
    pub(crate) batch_limit: Option<usize>,
    pub(crate) rejected_types: HashSet<String>,
    pub(crate) stored: Vec<Value>,
    pub(crate) stored_ids: Vec<String>,
    pub(crate) store_counts: HashMap<String, u64>,
    pub(crate) received: HashMap<String, u64>,
    pub(crate) requests: Vec<RequestLog>,
    pub(crate) ws_received: Vec<Value>,
    pub(crate) ws_connections: u64,
    /// Open WebSockets → a channel of text frames to send on them.
    pub(crate) sockets: HashMap<u64, UnboundedSender<String>>,
    /// Every token ever minted (access, refresh, ws), for leak checks.
    pub(crate) minted: Vec<String>,
    /// push-content's store and request record.
    pub(crate) pushes: crate::push_content::PushStore,
    next_id: u64,
}

impl State {
    /// A fresh, unguessable-enough token: a counter (for uniqueness) plus
    /// 128 bits from the std hasher's random keys.
    fn token(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        let mut out = format!("{prefix}-{}-", self.next_id);
        for salt in 0..2u64 {
            let mut h = RandomState::new().build_hasher();
            h.write_u64(self.next_id);
            h.write_u64(salt);
            out.push_str(&format!("{:016x}", h.finish()));
        }
        self.minted.push(out.clone());
        out
    }

    pub(crate) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn mint_pair(&mut self, username: &str) -> Tokens {
        let access = self.token("access");
        let refresh = self.token("refresh");
        self.access.insert(access.clone(), username.to_owned());
        self.refresh.insert(refresh.clone(), username.to_owned());
        Tokens { access, refresh }
    }

    pub(crate) fn mint_ws_token(&mut self) -> String {
        let token = self.token("ws");
        self.ws_tokens.insert(token.clone());
        token
    }

    pub(crate) fn access_valid(&self, bearer: Option<&str>) -> bool {
        bearer.is_some_and(|t| self.access.contains_key(t))
    }

    pub(crate) fn pop_fault(&mut self, route: Route) -> Option<Fault> {
        self.faults.get_mut(&route).and_then(VecDeque::pop_front)
    }

    pub(crate) fn count_received(&mut self, event_id: &str) {
        *self.received.entry(event_id.to_owned()).or_default() += 1;
    }

    /// Store `event` unless its type is rejected or its id is already stored.
    pub(crate) fn ingest(&mut self, event_id: &str, event: &Value) -> Ingest {
        if let Some(kind) = event.get("event_type").and_then(Value::as_str)
            && self.rejected_types.contains(kind)
        {
            return Ingest::Rejected(kind.to_owned());
        }
        if self.store_counts.contains_key(event_id) {
            return Ingest::Duplicate;
        }
        self.store_counts.insert(event_id.to_owned(), 1);
        self.stored_ids.push(event_id.to_owned());
        self.stored.push(event.clone());
        Ingest::Stored
    }

    /// Record one WebSocket text frame (see the crate docs).
    pub(crate) fn ws_frame(&mut self, frame: Value) {
        let is_pong = frame.get("type").and_then(Value::as_str) == Some("pong");
        if !is_pong && let Some(id) = frame.get("event_id").and_then(Value::as_str) {
            let id = id.to_owned();
            self.count_received(&id);
            let _ = self.ingest(&id, &frame);
        }
        self.ws_received.push(frame);
    }
}

/// The JSON body of a successful login or refresh.
pub(crate) fn token_body(tokens: &Tokens, team_slug: Option<&str>) -> Value {
    let mut body = json!({
        "access": tokens.access,
        "refresh": tokens.refresh,
        "access_lifetime": ACCESS_LIFETIME,
        "refresh_lifetime": REFRESH_LIFETIME,
    });
    if let (Some(team), Some(obj)) = (team_slug, body.as_object_mut()) {
        obj.insert("team_slug".into(), Value::from(team));
    }
    body
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SS+00:00`.
pub(crate) fn now_iso() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`, for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }
}
