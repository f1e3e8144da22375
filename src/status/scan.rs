//! A fast, conservative reader for ordinary lane-event lines.
//!
//! Profiling showed `serde_json`'s struct machinery, not the bytes, to be
//! the cost of reading a large log. This scanner validates a line as JSON
//! (same grammar `serde_json` accepts: RFC 8259 strings, escapes, numbers,
//! literals, nesting) and picks the top-level values a lane event needs. It
//! answers only when it is sure: any doubt — a key or needed string with an
//! escape, a duplicate key, a discriminator key (`kind`, `event_type`,
//! `event_name`, `type`), a structured actor, an unexpected type, a syntax
//! error — returns `None`, and the caller uses the `serde_json` path, which
//! is the authority and produces the error messages. Tests check that
//! whenever this scanner answers, the `serde_json` path gives the same event.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::event::{Actor, AnnotationDelta, AnnotationEvent, DoneEvidence};
use super::lane::Lane;
use super::line::{ActorView, LaneView, RrView};
use super::stamp::is_ulid;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Bit 7 of each byte that is zero (exact for "any", lowest set bit exact).
#[inline]
fn zero_bytes(v: u64) -> u64 {
    v.wrapping_sub(ONES) & !v & HIGHS
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

/// Kind and extent of a scanned value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A string; `escaped` if it contains a backslash escape.
    Str {
        escaped: bool,
    },
    Object,
    Array,
    True,
    False,
    Null,
    Number,
}

#[derive(Clone, Copy)]
struct Span {
    kind: Kind,
    /// For strings: the content between the quotes; otherwise the whole value.
    start: usize,
    end: usize,
}

impl<'a> Cursor<'a> {
    /// JSON whitespace except the newline: the scanner runs on text that may
    /// continue past the end of the line and must never cross it.
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    /// At an opening quote: skips the string, validating escapes and
    /// rejecting raw control characters. Returns the content span.
    fn string(&mut self) -> Option<(usize, usize, bool)> {
        self.eat(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            // Find the next quote, backslash or control character, 8 bytes at a time.
            while self.i + 8 <= self.b.len() {
                let mut word = [0u8; 8];
                word.copy_from_slice(&self.b[self.i..self.i + 8]);
                let v = u64::from_le_bytes(word);
                let hits = zero_bytes(v ^ (ONES * u64::from(b'"')))
                    | zero_bytes(v ^ (ONES * u64::from(b'\\')))
                    | (v.wrapping_sub(ONES * 0x20) & !v & HIGHS);
                if hits != 0 {
                    self.i += (hits.trailing_zeros() / 8) as usize;
                    break;
                }
                self.i += 8;
            }
            while let Some(&c) = self.b.get(self.i) {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.i += 1;
            }
            match *self.b.get(self.i)? {
                b'"' => {
                    let end = self.i;
                    self.i += 1;
                    return Some((start, end, escaped));
                }
                b'\\' => {
                    escaped = true;
                    self.i += 1;
                    match *self.b.get(self.i)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                        b'u' => {
                            let hex = self.b.get(self.i + 1..self.i + 5)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.i += 5;
                        }
                        _ => return None,
                    }
                }
                _ => return None, // raw control character
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.b.get(self.i) {
            self.i += 1;
        }
        self.i - start
    }

    /// JSON number grammar (as `serde_json`'s `ignore_integer`).
    fn number(&mut self) -> Option<()> {
        let _ = self.eat(b'-');
        match *self.b.get(self.i)? {
            b'0' => {
                self.i += 1;
                if let Some(b'0'..=b'9') = self.b.get(self.i) {
                    return None;
                }
            }
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.eat(b'.').is_some() && self.digits() == 0 {
            return None;
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + word.len())? == word {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// At a key: if one of the known keys from `*next` on starts here (with
    /// its colon), consumes it and advances `*next` past it.
    #[inline]
    fn predicted_key(&mut self, next: &mut usize) -> Option<Key> {
        let rest = self.b.get(self.i..)?;
        for (j, (pattern, key)) in SORTED_KEYS.iter().enumerate().skip(*next) {
            if rest.starts_with(pattern) {
                self.i += pattern.len();
                *next = j + 1;
                return Some(*key);
            }
        }
        None
    }

    /// Like [`Cursor::value`], but an object equal to the cached one is skipped
    /// by comparison, and a newly validated object becomes the cached one.
    fn cached_object(&mut self, cache: &mut ScanCache) -> Option<Span> {
        let start = self.i;
        if !cache.policy.is_empty() && self.b[start..].starts_with(&cache.policy) {
            self.i += cache.policy.len();
            return Some(Span {
                kind: Kind::Object,
                start,
                end: self.i,
            });
        }
        let span = self.value()?;
        if span.kind == Kind::Object {
            cache.policy.clear();
            cache
                .policy
                .extend_from_slice(&self.b[span.start..span.end]);
        }
        Some(span)
    }

    /// Skips one value of any kind (no depth limit, like `ignore_value`).
    fn value(&mut self) -> Option<Span> {
        let start = self.i;
        let kind = match *self.b.get(self.i)? {
            b'"' => {
                let (s, e, escaped) = self.string()?;
                return Some(Span {
                    kind: Kind::Str { escaped },
                    start: s,
                    end: e,
                });
            }
            b'{' | b'[' => {
                let kind = if self.b[self.i] == b'{' {
                    Kind::Object
                } else {
                    Kind::Array
                };
                self.container()?;
                kind
            }
            b't' => {
                self.literal(b"true")?;
                Kind::True
            }
            b'f' => {
                self.literal(b"false")?;
                Kind::False
            }
            b'n' => {
                self.literal(b"null")?;
                Kind::Null
            }
            b'-' | b'0'..=b'9' => {
                self.number()?;
                Kind::Number
            }
            _ => return None,
        };
        Some(Span {
            kind,
            start,
            end: self.i,
        })
    }

    /// Skips a nested object or array. The open brackets are kept in a
    /// 128-bit stack (1 = object); deeper nesting returns `None` and the
    /// serde path decides.
    fn container(&mut self) -> Option<()> {
        let mut kinds: u128 = 0;
        let mut depth: u32 = 0;
        loop {
            // At an opening bracket.
            let open = *self.b.get(self.i)?;
            self.i += 1;
            if depth == 128 {
                return None;
            }
            kinds = (kinds << 1) | u128::from(open == b'{');
            depth += 1;
            self.ws();
            let close = if open == b'{' { b'}' } else { b']' };
            if self.eat(close).is_some() {
                kinds >>= 1;
                depth -= 1;
            } else if !self.member_start(open)? {
                continue;
            }
            // After a complete value: commas and closers until a new container opens.
            loop {
                if depth == 0 {
                    return Some(());
                }
                let top = if kinds & 1 == 1 { b'{' } else { b'[' };
                self.ws();
                match *self.b.get(self.i)? {
                    b',' => {
                        self.i += 1;
                        self.ws();
                        if !self.member_start(top)? {
                            break; // a nested container opens
                        }
                    }
                    b'}' if top == b'{' => {
                        self.i += 1;
                        kinds >>= 1;
                        depth -= 1;
                    }
                    b']' if top == b'[' => {
                        self.i += 1;
                        kinds >>= 1;
                        depth -= 1;
                    }
                    _ => return None,
                }
            }
        }
    }

    /// Reads `"key": ` (objects) and then a scalar value; returns `Some(false)`
    /// when the value is a container, left unconsumed at its opening bracket.
    fn member_start(&mut self, container: u8) -> Option<bool> {
        if container == b'{' {
            if self.b.get(self.i) != Some(&b'"') {
                return None;
            }
            self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
        }
        match *self.b.get(self.i)? {
            b'{' | b'[' => Some(false),
            _ => self.value().map(|_| true),
        }
    }
}

/// Top-level keys a status line may carry (`Other`: any key no reader uses).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Actor,
    At,
    Delta,
    EventId,
    Evidence,
    ExecutionMode,
    Force,
    FromLane,
    Kind,
    MissionId,
    MissionSlug,
    PolicyMetadata,
    Reason,
    ReviewRef,
    ReviewResult,
    ToLane,
    WpId,
    Other,
}

/// The known keys as `json.dumps(sort_keys=True)` writes them (quoted, then
/// the colon), in sorted order: on ordinary lines the next key is recognized
/// by one comparison instead of being scanned.
const SORTED_KEYS: [(&[u8], Key); 17] = [
    (b"\"actor\":", Key::Actor),
    (b"\"at\":", Key::At),
    (b"\"delta\":", Key::Delta),
    (b"\"event_id\":", Key::EventId),
    (b"\"evidence\":", Key::Evidence),
    (b"\"execution_mode\":", Key::ExecutionMode),
    (b"\"force\":", Key::Force),
    (b"\"from_lane\":", Key::FromLane),
    (b"\"kind\":", Key::Kind),
    (b"\"mission_id\":", Key::MissionId),
    (b"\"mission_slug\":", Key::MissionSlug),
    (b"\"policy_metadata\":", Key::PolicyMetadata),
    (b"\"reason\":", Key::Reason),
    (b"\"review_ref\":", Key::ReviewRef),
    (b"\"review_result\":", Key::ReviewResult),
    (b"\"to_lane\":", Key::ToLane),
    (b"\"wp_id\":", Key::WpId),
];

/// Classifies an unescaped key; the discriminators of non-lane lines
/// (`event_type`, `event_name`, `type`) are left to serde.
fn key_of(key: &str) -> Option<Key> {
    Some(match key {
        "actor" => Key::Actor,
        "at" => Key::At,
        "delta" => Key::Delta,
        "event_id" => Key::EventId,
        "evidence" => Key::Evidence,
        "execution_mode" => Key::ExecutionMode,
        "force" => Key::Force,
        "from_lane" => Key::FromLane,
        "kind" => Key::Kind,
        "mission_id" => Key::MissionId,
        "mission_slug" => Key::MissionSlug,
        "policy_metadata" => Key::PolicyMetadata,
        "reason" => Key::Reason,
        "review_ref" => Key::ReviewRef,
        "review_result" => Key::ReviewResult,
        "to_lane" => Key::ToLane,
        "wp_id" => Key::WpId,
        "event_type" | "event_name" | "type" => return None,
        _ => Key::Other,
    })
}

/// The values of the top-level keys a lane event uses.
#[derive(Default)]
struct Top {
    event_id: Option<Span>,
    wp_id: Option<Span>,
    at: Option<Span>,
    actor: Option<Span>,
    from_lane: Option<Span>,
    to_lane: Option<Span>,
    force: Option<Span>,
    execution_mode: Option<Span>,
    mission_slug: Option<Span>,
    mission_id: Option<Span>,
    reason: Option<Span>,
    review_ref: Option<Span>,
    evidence: Option<Span>,
    review_result: Option<Span>,
    policy_metadata: Option<Span>,
    delta: Option<Span>,
    kind: Option<Span>,
}

impl Top {
    /// A key only lane events use is present.
    fn has_lane_keys(&self) -> bool {
        [
            self.from_lane,
            self.to_lane,
            self.force,
            self.execution_mode,
            self.mission_slug,
            self.mission_id,
            self.reason,
            self.review_ref,
            self.evidence,
            self.review_result,
            self.policy_metadata,
        ]
        .iter()
        .any(Option::is_some)
    }
}

/// What the fast reader recognized.
#[expect(
    clippy::large_enum_variant,
    reason = "returned per line on the hot path and consumed at once; boxing the \
              common lane variant would add an allocation per line"
)]
pub(crate) enum FastLine<'a> {
    Lane(LaneView<'a>),
    Annotation(Box<AnnotationEvent>),
}

/// Memory of the last `policy_metadata` object validated by this reader.
///
/// The orchestrator writes the same policy object on every event. A JSON
/// object is self-delimiting, so bytes equal to an already validated object
/// are that same valid object, ending at the same place: they are skipped
/// with one comparison instead of being validated again.
#[derive(Default)]
pub(crate) struct ScanCache {
    policy: Vec<u8>,
}

/// Reads an ordinary lane-event line, or `None` when unsure (see module doc).
#[cfg(test)]
pub(crate) fn fast_lane(line: &str) -> Option<LaneView<'_>> {
    match fast_line(line, &mut ScanCache::default())? {
        (FastLine::Lane(view), used) if line[used..].trim_matches([' ', '\t', '\r']).is_empty() => {
            Some(view)
        }
        _ => None,
    }
}

/// Reads one ordinary lane-event or annotation line at the start of `text`
/// (which may continue with more lines) and returns it with the number of
/// bytes used, up to and including the closing brace. `None` when unsure.
/// The caller checks that only spaces, tabs or `\r` follow before the newline.
pub(crate) fn fast_line<'a>(text: &'a str, cache: &mut ScanCache) -> Option<(FastLine<'a>, usize)> {
    let mut c = Cursor {
        b: text.as_bytes(),
        i: 0,
    };
    let mut top = Top::default();
    c.eat(b'{')?;
    c.ws();
    if c.eat(b'}').is_some() {
        return None;
    }
    let mut next_key = 0usize;
    loop {
        let key = match c.predicted_key(&mut next_key) {
            Some(key) => key,
            None => {
                let (ks, ke, escaped) = c.string()?;
                if escaped {
                    return None;
                }
                c.ws();
                c.eat(b':')?;
                key_of(&text[ks..ke])?
            }
        };
        c.ws();
        let span = if key == Key::PolicyMetadata {
            c.cached_object(cache)?
        } else {
            c.value()?
        };
        let slot = match key {
            Key::EventId => Some(&mut top.event_id),
            Key::WpId => Some(&mut top.wp_id),
            Key::At => Some(&mut top.at),
            Key::Actor => Some(&mut top.actor),
            Key::FromLane => Some(&mut top.from_lane),
            Key::ToLane => Some(&mut top.to_lane),
            Key::Force => Some(&mut top.force),
            Key::ExecutionMode => Some(&mut top.execution_mode),
            Key::MissionSlug => Some(&mut top.mission_slug),
            Key::MissionId => Some(&mut top.mission_id),
            Key::Reason => Some(&mut top.reason),
            Key::ReviewRef => Some(&mut top.review_ref),
            Key::Evidence => Some(&mut top.evidence),
            Key::ReviewResult => Some(&mut top.review_result),
            Key::PolicyMetadata => Some(&mut top.policy_metadata),
            Key::Delta => Some(&mut top.delta),
            Key::Kind => Some(&mut top.kind),
            Key::Other => None,
        };
        if let Some(slot) = slot {
            if slot.is_some() {
                return None; // duplicate key: serde reports it
            }
            *slot = Some(span);
        }
        c.ws();
        match c.b.get(c.i)? {
            b',' => {
                c.i += 1;
                c.ws();
            }
            b'}' => {
                c.i += 1;
                break;
            }
            _ => return None,
        }
    }
    let used = c.i;
    let item = if top.kind.is_some() {
        FastLine::Annotation(Box::new(build_annotation(text, &top)?))
    } else {
        FastLine::Lane(build(text, &top)?)
    };
    Some((item, used))
}

/// An annotation whose keys are only `actor`, `at`, `delta`, `event_id`,
/// `kind` and `wp_id` (plus keys no status reader knows), with unescaped
/// strings and a delta holding just a note or just subtask statuses.
fn build_annotation(line: &str, top: &Top) -> Option<AnnotationEvent> {
    if plain(line, top.kind)? != "annotation" || top.has_lane_keys() {
        return None;
    }
    let event_id = plain(line, top.event_id)?;
    if !is_ulid(event_id) {
        return None;
    }
    let delta_text = match top.delta? {
        Span {
            kind: Kind::Object,
            start,
            end,
        } => line.get(start..end)?,
        _ => return None,
    };
    Some(AnnotationEvent {
        event_id: event_id.to_owned(),
        wp_id: plain(line, top.wp_id)?.to_owned(),
        at: plain(line, top.at)?.to_owned(),
        actor: Actor::Name(plain(line, top.actor)?.to_owned()),
        delta: simple_delta(delta_text)?,
    })
}

/// `{"note": "..."}` or `{"subtasks": {"T001": "done", ...}}`, unescaped.
fn simple_delta(text: &str) -> Option<AnnotationDelta> {
    let mut c = Cursor {
        b: text.as_bytes(),
        i: 0,
    };
    c.eat(b'{')?;
    c.ws();
    let (ks, ke, escaped) = c.string()?;
    if escaped {
        return None;
    }
    c.ws();
    c.eat(b':')?;
    c.ws();
    let span = c.value()?;
    c.ws();
    c.eat(b'}')?;
    let mut delta = AnnotationDelta::default();
    match (&text[ks..ke], span.kind) {
        ("note", Kind::Str { escaped: false }) => {
            delta.note = Some(text.get(span.start..span.end)?.to_owned());
        }
        ("subtasks", Kind::Object) => {
            delta.subtasks = Some(subtask_map(text.get(span.start..span.end)?)?);
        }
        _ => return None,
    }
    Some(delta)
}

/// An object of unescaped subtask ids to unescaped lane names, ids unique.
fn subtask_map(text: &str) -> Option<BTreeMap<String, Lane>> {
    let mut c = Cursor {
        b: text.as_bytes(),
        i: 0,
    };
    let mut map = BTreeMap::new();
    c.eat(b'{')?;
    c.ws();
    if c.eat(b'}').is_some() {
        return Some(map);
    }
    loop {
        let (ks, ke, escaped) = c.string()?;
        if escaped {
            return None;
        }
        c.ws();
        c.eat(b':')?;
        c.ws();
        let (vs, ve, v_escaped) = c.string()?;
        if v_escaped {
            return None;
        }
        let lane = Lane::from_wire(&text[vs..ve]).ok()?;
        if map.insert(text[ks..ke].to_owned(), lane).is_some() {
            return None;
        }
        c.ws();
        match *c.b.get(c.i)? {
            b',' => {
                c.i += 1;
                c.ws();
            }
            b'}' => return Some(map),
            _ => return None,
        }
    }
}

/// An unescaped string's text.
fn plain(line: &str, span: Option<Span>) -> Option<&str> {
    match span? {
        Span {
            kind: Kind::Str { escaped: false },
            start,
            end,
        } => line.get(start..end),
        _ => None,
    }
}

/// Absent or null → `Some(None)`; an unescaped string → `Some(Some(text))`; else unsure.
fn optional<'a>(line: &'a str, span: Option<Span>) -> Option<Option<Cow<'a, str>>> {
    match span {
        None => Some(None),
        Some(Span {
            kind: Kind::Null, ..
        }) => Some(None),
        Some(_) => plain(line, span).map(|s| Some(Cow::Borrowed(s))),
    }
}

/// Absent or null → `Some(None)`; an object → `Some(Some(text))`; else unsure.
fn object(line: &str, span: Option<Span>) -> Option<Option<&str>> {
    match span {
        None => Some(None),
        Some(Span {
            kind: Kind::Null, ..
        }) => Some(None),
        Some(Span {
            kind: Kind::Object,
            start,
            end,
        }) => line.get(start..end).map(Some),
        Some(_) => None,
    }
}

/// A review-result object (already validated JSON): `{}` → `Some(None)`; the
/// three required fields as unescaped strings (and `feedback_path` unescaped
/// or null), each once → `Some(Some(raw))`; anything else is left to serde.
fn review_result(text: &str) -> Option<Option<RrView<'_>>> {
    let mut c = Cursor {
        b: text.as_bytes(),
        i: 0,
    };
    c.eat(b'{')?;
    c.ws();
    if c.eat(b'}').is_some() {
        return Some(None);
    }
    let mut seen = [false; 4];
    loop {
        let (ks, ke, escaped) = c.string()?;
        if escaped {
            return None;
        }
        c.ws();
        c.eat(b':')?;
        c.ws();
        let span = c.value()?;
        let field = match &text[ks..ke] {
            "reviewer" => Some(0),
            "verdict" => Some(1),
            "reference" => Some(2),
            "feedback_path" => Some(3),
            _ => None,
        };
        if let Some(f) = field {
            let ok = match span.kind {
                Kind::Str { escaped: false } => true,
                Kind::Null => f == 3,
                _ => false,
            };
            if !ok || seen[f] {
                return None;
            }
            seen[f] = true;
        }
        c.ws();
        match *c.b.get(c.i)? {
            b',' => {
                c.i += 1;
                c.ws();
            }
            b'}' => break,
            _ => return None,
        }
    }
    (seen[0] && seen[1] && seen[2]).then_some(Some(RrView::Raw(text)))
}

/// `{}` (with optional inner whitespace).
fn is_empty_object(text: &str) -> bool {
    text.strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .is_some_and(|inner| {
            inner
                .bytes()
                .all(|b| matches!(b, b' ' | b'\n' | b'\t' | b'\r'))
        })
}

fn build<'a>(line: &'a str, top: &Top) -> Option<LaneView<'a>> {
    let force = match top.force?.kind {
        Kind::True => true,
        Kind::False => false,
        _ => return None,
    };
    let evidence = match object(line, top.evidence)? {
        None => None,
        Some(text) if is_empty_object(text) => None,
        Some(text) => Some(Box::new(serde_json::from_str::<DoneEvidence>(text).ok()?)),
    };
    let review_result = match object(line, top.review_result)? {
        None => None,
        Some(text) => review_result(text)?,
    };
    if let Some(delta) = top.delta
        && delta.kind != Kind::Object
        && delta.kind != Kind::Null
    {
        return None;
    }
    Some(LaneView {
        event_id: Cow::Borrowed(plain(line, top.event_id)?),
        wp_id: Cow::Borrowed(plain(line, top.wp_id)?),
        at: Cow::Borrowed(plain(line, top.at)?),
        from_lane: Lane::from_wire(plain(line, top.from_lane)?).ok()?,
        to_lane: Lane::from_wire(plain(line, top.to_lane)?).ok()?,
        force,
        actor: ActorView::Name(Cow::Borrowed(plain(line, top.actor)?)),
        execution_mode: Cow::Borrowed(plain(line, top.execution_mode)?),
        mission_slug: optional(line, top.mission_slug)?,
        mission_id: optional(line, top.mission_id)?,
        reason: optional(line, top.reason)?,
        review_ref: optional(line, top.review_ref)?,
        evidence,
        review_result,
        policy_metadata: object(line, top.policy_metadata)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::line::{ParsedLine, parse_line};
    use proptest::prelude::*;

    const E2E_LOG: &str = include_str!("testdata/e2e.status.events.jsonl");
    const DONE_LINE: &str = r#"{"actor": "spec-kitty-orchestrator", "at": "2026-11-24T10:19:07.327864+00:00", "event_id": "01M86H1ZNZ8GNJH6D2PX3CH57B", "evidence": {"review": {"reference": "review-WP01-cycle2-cccccccc", "reviewer": "codex", "verdict": "approved"}}, "execution_mode": "worktree", "force": false, "from_lane": "in_review", "mission_slug": "099-orchestrator-e2e", "policy_metadata": {"agent_family": "claude", "approval_mode": "full_auto", "dangerous_flags": [], "network_mode": "none", "orchestrator_id": "spec-kitty-orchestrator", "orchestrator_version": "0.1.3", "sandbox_mode": "workspace_write", "tool_restrictions": null}, "reason": "Review approved by 'codex'", "review_ref": "review-WP01-cycle2-cccccccc", "review_result": {"reference": "review-WP01-cycle2-cccccccc", "reviewer": "codex", "verdict": "approved"}, "to_lane": "done", "wp_id": "WP01"}"#;
    const CLAIM_LINE: &str = r#"{"actor": "spec-kitty-orchestrator", "at": "2026-11-24T10:22:28.200000+00:00", "event_id": "01M86H7KA0000000000000000B", "evidence": null, "execution_mode": "worktree", "force": false, "from_lane": "planned", "mission_slug": "099-orchestrator-e2e", "policy_metadata": {"agent": "claude", "n": [1, -2.5e+3, 0, {"x": [true, false, null, "a\"b\\c\u00e9"]}], "shell_pid": 4242}, "reason": null, "review_ref": null, "to_lane": "claimed", "wp_id": "WP01"}"#;

    /// The serde path's reading of a line, when it is a lane event.
    fn slow(line: &str) -> Option<LaneView<'_>> {
        match parse_line(line) {
            Ok(ParsedLine::Lane(v)) => Some(*v),
            _ => None,
        }
    }

    /// The fast reader on a whole line, as the store uses it.
    fn fast_full<'a>(line: &'a str, cache: &mut ScanCache) -> Option<FastLine<'a>> {
        let (item, used) = fast_line(line, cache)?;
        line[used..]
            .trim_matches([' ', '\t', '\r'])
            .is_empty()
            .then_some(item)
    }

    /// Whenever the fast reader answers, it must agree with the serde path,
    /// with a fresh cache and with a cache primed by the unmutated lines.
    fn agrees(line: &str) -> bool {
        let mut primed = ScanCache::default();
        for base in [DONE_LINE, CLAIM_LINE] {
            let _ = fast_line(base, &mut primed);
            for cache in [&mut ScanCache::default(), &mut primed] {
                let same = match fast_full(line, cache) {
                    None => true,
                    Some(FastLine::Lane(fast)) => slow(line).is_some_and(|s| s == fast),
                    Some(FastLine::Annotation(fast)) => {
                        matches!(parse_line(line), Ok(ParsedLine::Annotation(a)) if a == fast)
                    }
                };
                if !same {
                    return false;
                }
            }
        }
        true
    }

    #[test]
    fn ordinary_lines_take_the_fast_path_and_agree() {
        let lines: Vec<&str> = E2E_LOG.lines().chain([DONE_LINE, CLAIM_LINE]).collect();
        let (mut lanes, mut notes) = (0, 0);
        for line in &lines {
            match fast_full(line, &mut ScanCache::default()) {
                Some(FastLine::Lane(_)) => lanes += 1,
                Some(FastLine::Annotation(_)) => notes += 1,
                None => {}
            }
            assert!(agrees(line), "{line}");
        }
        // 9 lane events in the e2e log + the two above; the three note and
        // subtask annotations; the note with an escaped "—" and the
        // mission-level line go to the serde path.
        assert_eq!((lanes, notes), (11, 2));
        assert!(
            fast_lane(CLAIM_LINE)
                .unwrap()
                .policy_metadata
                .unwrap()
                .contains("\\u00e9")
        );
    }

    #[test]
    fn unsure_lines_fall_back() {
        let cases = [
            // escaped needed string
            DONE_LINE.replace("Review approved", "Review \\u0061pproved"),
            // duplicate key
            DONE_LINE.replace(r#""force": false"#, r#""force": false, "force": true"#),
            // trailing garbage
            format!("{DONE_LINE} x"),
            // discriminator present
            DONE_LINE.replace(
                r#""force": false"#,
                r#""force": false, "kind": "annotation""#,
            ),
            // structured actor
            DONE_LINE.replace(
                r#""actor": "spec-kitty-orchestrator""#,
                r#""actor": {"model": null, "profile": null, "role": "r", "tool": "t"}"#,
            ),
            // bad numbers, literals, escapes, control characters
            DONE_LINE.replace(r#""dangerous_flags": []"#, r#""dangerous_flags": [01]"#),
            DONE_LINE.replace(r#""dangerous_flags": []"#, r#""dangerous_flags": [1.]"#),
            DONE_LINE.replace(r#""dangerous_flags": []"#, r#""dangerous_flags": [1e+]"#),
            DONE_LINE.replace(r#""dangerous_flags": []"#, r#""dangerous_flags": [-]"#),
            DONE_LINE.replace(r#""dangerous_flags": []"#, r#""dangerous_flags": [tru]"#),
            DONE_LINE.replace(r#""dangerous_flags": []"#, r#""dangerous_flags": [1,]"#),
            DONE_LINE.replace(r#""dangerous_flags": []"#, r#""dangerous_flags": ["\x"]"#),
            DONE_LINE.replace(
                r#""dangerous_flags": []"#,
                r#""dangerous_flags": ["\u12g4"]"#,
            ),
            DONE_LINE.replace(r#""dangerous_flags": []"#, "\"dangerous_flags\": [\"\t\"]"),
            DONE_LINE.replace(r#""dangerous_flags": []"#, r#""dangerous_flags": {"a" 1}"#),
            DONE_LINE.replace(r#""dangerous_flags": []"#, r#""dangerous_flags": [}"#),
            // wrong types
            DONE_LINE.replace(r#""force": false"#, r#""force": 0"#),
            DONE_LINE.replace(r#""to_lane": "done""#, r#""to_lane": "doing""#),
            DONE_LINE.replace(
                r#""reason": "Review approved by 'codex'""#,
                r#""reason": 5"#,
            ),
        ];
        for line in &cases {
            assert!(fast_lane(line).is_none(), "{line}");
        }
    }

    #[test]
    fn key_order_and_unknown_keys_do_not_matter() {
        let reordered = DONE_LINE
            .replacen(r#""actor": "spec-kitty-orchestrator", "#, "", 1)
            .replace(
                r#""wp_id": "WP01"}"#,
                r#""wp_id": "WP01", "zz": [1, {"k": null}], "actor": "spec-kitty-orchestrator"}"#,
            );
        let fast = fast_lane(&reordered).expect("fast path");
        assert_eq!(Some(fast), slow(&reordered));
        assert_eq!(fast_lane(&reordered), fast_lane(DONE_LINE));
        // A known key spelled with an escape is left to serde.
        let escaped_key = DONE_LINE.replace(r#""wp_id""#, r#""wp\u005fid""#);
        assert!(fast_lane(&escaped_key).is_none());
        assert!(agrees(&escaped_key));
    }

    #[test]
    fn deep_nesting_and_whitespace_agree() {
        // The policy_metadata object is depth 1, so 127 more levels fit.
        for (levels, fast) in [(127, true), (128, false), (300, false)] {
            let deep = format!(
                "{}{}",
                "[{\"a\": ".repeat(levels / 2),
                "}]".repeat(levels / 2)
            );
            let deep = if levels % 2 == 1 {
                format!("[{deep}]")
            } else {
                deep
            };
            let deep = if deep.is_empty() {
                "[]".to_owned()
            } else {
                deep.replace(": }", ": 1}")
            };
            let line = DONE_LINE.replace(
                r#""dangerous_flags": []"#,
                &format!(r#""dangerous_flags": {deep}"#),
            );
            assert_eq!(fast_lane(&line).is_some(), fast, "{levels} levels");
            assert!(
                slow(&line).is_some(),
                "serde accepts any depth in skipped values"
            );
            assert!(agrees(&line));
        }
        let spaced = DONE_LINE
            .replace(", ", " ,\t")
            .replace(": ", " :  ")
            .replace('{', "{ ");
        assert!(fast_lane(&spaced).is_some());
        assert!(agrees(&spaced));
    }

    fn mutate(line: &str, edits: &[(usize, u8, u8)]) -> String {
        const ALPHABET: &[u8] = b"\"\\{}[],:0-9eE.+ntfu\t \x01abAZ";
        let mut bytes = line.as_bytes().to_vec();
        for &(pos, op, pick) in edits {
            if bytes.is_empty() {
                break;
            }
            let pos = pos % bytes.len();
            let c = ALPHABET[pick as usize % ALPHABET.len()];
            match op % 3 {
                0 => {
                    bytes.remove(pos);
                }
                1 => bytes.insert(pos, c),
                _ => bytes[pos] = c,
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 3000,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn mutated_lines_never_disagree(
            which in 0usize..5,
            edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
        ) {
            let base = [
                DONE_LINE,
                CLAIM_LINE,
                E2E_LOG.lines().nth(1).unwrap_or(DONE_LINE),
                E2E_LOG.lines().nth(2).unwrap_or(DONE_LINE),
                E2E_LOG.lines().nth(5).unwrap_or(DONE_LINE),
            ][which];
            let line = mutate(base, &edits);
            prop_assert!(agrees(&line), "fast and serde disagree on {}", line);
        }
    }
}
