//! `status.events.jsonl` and the dossier snapshot: legacy keys rewritten to canonical ones.
//!
//! Each legacy line (`feature_slug`, any feature-era key at any depth, or the legacy lane alias
//! `doing` in `from_lane`/`to_lane`) is rewritten in place: same position in the log, every
//! other field kept, printed as the CLI prints a status line (`json.dumps(sort_keys=True)`,
//! [`crate::status::pyjson::line`]). Lines that are already canonical keep their exact bytes; a
//! line that is not JSON (a torn tail) is left for the status reader to report.

use serde_json::{Map, Value};

use crate::status::pyjson;

const RENAMES: &[(&str, &str)] = &[
    ("feature_slug", "mission_slug"),
    ("feature_number", "mission_number"),
    ("mission_key", "mission_type"),
    ("feature_type", "mission_type"),
];

const LANE_FIELDS: &[&str] = &["from_lane", "to_lane"];
const LANE_ALIASES: &[(&str, &str)] = &[("doing", "in_progress")];

/// Rename feature-era keys at every depth (canonical values already present win). Returns
/// whether anything changed.
pub fn rename_keys(v: &mut Value) -> bool {
    match v {
        Value::Object(m) => {
            let mut changed = rename_in(m);
            for child in m.values_mut() {
                changed |= rename_keys(child);
            }
            changed
        }
        Value::Array(a) => {
            // Every element, not only up to the first change.
            let mut changed = false;
            for x in a {
                changed |= rename_keys(x);
            }
            changed
        }
        _ => false,
    }
}

fn rename_in(m: &mut Map<String, Value>) -> bool {
    let mut changed = false;
    for (legacy, canonical) in RENAMES {
        if let Some(value) = m.shift_remove(*legacy) {
            changed = true;
            let blank = match m.get(*canonical) {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.trim().is_empty(),
                Some(_) => false,
            };
            if blank {
                m.insert((*canonical).to_owned(), value);
            }
        }
    }
    changed
}

fn lane_aliases(m: &mut Map<String, Value>) -> bool {
    let mut changed = false;
    for field in LANE_FIELDS {
        if let Some(Value::String(v)) = m.get_mut(*field)
            && let Some((_, to)) = LANE_ALIASES.iter().find(|(from, _)| *from == v.as_str())
        {
            *v = (*to).to_owned();
            changed = true;
        }
    }
    changed
}

/// The canonical form of one log line (without its newline), `None` when it is canonical
/// already or not JSON.
pub fn canonical_line(line: &str) -> Option<String> {
    let mut v: Value = serde_json::from_str(line).ok()?;
    let mut changed = rename_keys(&mut v);
    if let Value::Object(m) = &mut v {
        changed |= lane_aliases(m);
    }
    changed.then(|| pyjson::line(&v))
}

/// The rewritten log and the number of lines changed; `None` when nothing is legacy.
pub fn canonical_log(bytes: &[u8]) -> Option<(Vec<u8>, u64)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut changed = 0u64;
    for piece in text.split_inclusive('\n') {
        let (line, nl) = match piece.strip_suffix('\n') {
            Some(l) => (l, "\n"),
            None => (piece, ""),
        };
        // Cheap pre-filter: a canonical line has neither a feature-era key nor the alias.
        let maybe = RENAMES.iter().any(|(k, _)| line.contains(k))
            || LANE_ALIASES.iter().any(|(a, _)| line.contains(a));
        match maybe.then(|| canonical_line(line)).flatten() {
            Some(new) if !nl.is_empty() => {
                out.push_str(&new);
                out.push('\n');
                changed += 1;
            }
            _ => {
                out.push_str(line);
                out.push_str(nl);
            }
        }
    }
    (changed > 0).then(|| (out.into_bytes(), changed))
}

/// Whether a JSON document (status.json, a dossier snapshot) still carries a feature-era key.
pub fn has_legacy_keys(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, x)| RENAMES.iter().any(|(l, _)| l == k) || has_legacy_keys(x)),
        Value::Array(a) => a.iter().any(has_legacy_keys),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_line_is_rewritten_in_the_cli_format() {
        let legacy = r#"{"actor": "claude", "at": "2026-01-01T00:00:00+00:00", "event_id": "01HZZZZZZZZZZZZZZZZZZZZZZZ", "evidence": null, "execution_mode": "worktree", "feature_slug": "001-a", "force": false, "from_lane": "planned", "reason": null, "review_ref": null, "to_lane": "doing", "wp_id": "WP01"}"#;
        let new = canonical_line(legacy).unwrap();
        assert_eq!(
            new,
            r#"{"actor": "claude", "at": "2026-01-01T00:00:00+00:00", "event_id": "01HZZZZZZZZZZZZZZZZZZZZZZZ", "evidence": null, "execution_mode": "worktree", "force": false, "from_lane": "planned", "mission_slug": "001-a", "reason": null, "review_ref": null, "to_lane": "in_progress", "wp_id": "WP01"}"#
        );
        assert_eq!(canonical_line(&new), None);
    }

    #[test]
    fn log_keeps_order_and_canonical_bytes() {
        let a = r#"{"feature_slug": "001-a", "wp_id": "WP01"}"#;
        let b = r#"{"mission_slug":"001-a","wp_id":"WP02"}"#;
        let log = format!("{a}\n{b}\n{{torn");
        let (out, n) = canonical_log(log.as_bytes()).unwrap();
        assert_eq!(n, 1);
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            format!("{{\"mission_slug\": \"001-a\", \"wp_id\": \"WP01\"}}\n{b}\n{{torn")
        );
        assert!(canonical_log(out.as_bytes()).is_none());
    }
}
