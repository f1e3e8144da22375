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

use super::event::{ActorView, DoneEvidence, LaneView, RrView};
use super::lane::Lane;

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
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.b.get(self.i) {
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
    fast_lane_cached(line, &mut ScanCache::default())
}

/// [`fast_lane`] with a cache shared by the lines of one reader.
pub(crate) fn fast_lane_cached<'a>(line: &'a str, cache: &mut ScanCache) -> Option<LaneView<'a>> {
    let mut c = Cursor {
        b: line.as_bytes(),
        i: 0,
    };
    let mut top = Top::default();
    c.eat(b'{')?;
    c.ws();
    if c.eat(b'}').is_some() {
        return None;
    }
    loop {
        let (ks, ke, escaped) = c.string()?;
        if escaped {
            return None;
        }
        c.ws();
        c.eat(b':')?;
        c.ws();
        let key = &line[ks..ke];
        let span = if key == "policy_metadata" {
            c.cached_object(cache)?
        } else {
            c.value()?
        };
        let slot = match key {
            "event_id" => &mut top.event_id,
            "wp_id" => &mut top.wp_id,
            "at" => &mut top.at,
            "actor" => &mut top.actor,
            "from_lane" => &mut top.from_lane,
            "to_lane" => &mut top.to_lane,
            "force" => &mut top.force,
            "execution_mode" => &mut top.execution_mode,
            "mission_slug" => &mut top.mission_slug,
            "mission_id" => &mut top.mission_id,
            "reason" => &mut top.reason,
            "review_ref" => &mut top.review_ref,
            "evidence" => &mut top.evidence,
            "review_result" => &mut top.review_result,
            "policy_metadata" => &mut top.policy_metadata,
            "delta" => &mut top.delta,
            "kind" | "event_type" | "event_name" | "type" => return None,
            _ => {
                c.ws();
                match c.b.get(c.i)? {
                    b',' => {
                        c.i += 1;
                        c.ws();
                        continue;
                    }
                    b'}' => {
                        c.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        };
        if slot.is_some() {
            return None; // duplicate key: serde reports it
        }
        *slot = Some(span);
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
    c.ws();
    if c.i != c.b.len() {
        return None;
    }
    build(line, &top)
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
    use crate::status::event::{ParsedLine, parse_line};
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

    /// Whenever the fast scanner answers, it must agree with the serde path,
    /// with a fresh cache and with a cache primed by the unmutated lines.
    fn agrees(line: &str) -> bool {
        let mut primed = ScanCache::default();
        for base in [DONE_LINE, CLAIM_LINE] {
            let _ = fast_lane_cached(base, &mut primed);
            for cache in [&mut ScanCache::default(), &mut primed] {
                if let Some(fast) = fast_lane_cached(line, cache)
                    && slow(line).is_none_or(|s| s != fast)
                {
                    return false;
                }
            }
        }
        true
    }

    #[test]
    fn ordinary_lines_take_the_fast_path_and_agree() {
        let lines: Vec<&str> = E2E_LOG.lines().chain([DONE_LINE, CLAIM_LINE]).collect();
        let mut fast = 0;
        for line in &lines {
            if let Some(v) = fast_lane(line) {
                fast += 1;
                assert_eq!(Some(v), slow(line), "{line}");
            }
        }
        // 9 lane events in the e2e log + the two above; annotations and the
        // mission-level line go to the serde path.
        assert_eq!(fast, 11);
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
            which in 0usize..3,
            edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
        ) {
            let base = [DONE_LINE, CLAIM_LINE, E2E_LOG.lines().nth(1).unwrap_or(DONE_LINE)][which];
            let line = mutate(base, &edits);
            prop_assert!(agrees(&line), "fast and serde disagree on {}", line);
        }
    }
}
