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
            let blank = m.get(*canonical).is_none_or(is_blank);
            if blank {
                m.insert((*canonical).to_owned(), value);
            }
        }
    }
    changed
}

/// The canonical form of one log line (without its newline), `None` when it is canonical
/// already or not JSON.
pub fn canonical_line(line: &str) -> Option<String> {
    // A line is an object: its top-level entries are parsed into a list (no map is built for
    // them; profiling the upgrade of a 100,000-line log showed the map inserts as a large cost),
    // renamed like [`rename_keys`] does, and printed sorted by [`pyjson::line_of_entries`].
    let Ok(Entries(mut entries)) = serde_json::from_str::<Entries>(line) else {
        // Not an object (or not JSON): the general path decides.
        let mut v: Value = serde_json::from_str(line).ok()?;
        return rename_keys(&mut v).then(|| pyjson::line(&v));
    };
    // A key given twice keeps its last value (as `serde_json` and `json.loads` do); lines
    // written with sorted keys (all of the CLI's and upstream's) need no sort.
    if !entries.is_sorted_by(|a, b| a.0 < b.0) {
        entries.reverse();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|later, first| later.0 == first.0);
    }
    let mut changed = false;
    for (key, value) in &mut entries {
        changed |= rename_keys(value);
        if LANE_FIELDS.contains(&key.as_str())
            && let Value::String(v) = value
            && let Some((_, to)) = LANE_ALIASES.iter().find(|(from, _)| *from == v.as_str())
        {
            *v = (*to).to_owned();
            changed = true;
        }
    }
    // The top-level renames, as `rename_in` does them (a canonical value present wins).
    for (legacy, canonical) in RENAMES {
        let Some(at) = entries.iter().position(|(k, _)| k == legacy) else {
            continue;
        };
        changed = true;
        let (_, value) = entries.remove(at);
        // Kept sorted: the canonical key goes where it belongs.
        match entries.binary_search_by(|(k, _)| k.as_str().cmp(canonical)) {
            Err(to) => entries.insert(to, ((*canonical).to_owned(), value)),
            Ok(i) if is_blank(&entries[i].1) => entries[i].1 = value,
            Ok(_) => {}
        }
    }
    changed.then(|| pyjson::line_of_entries(&mut entries))
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// A JSON object's top-level entries in the order given (duplicates kept).
struct Entries(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Entries;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Entries, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    out.push(entry);
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(Visit)
    }
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

    /// The reference: the whole line as a map, renamed by `rename_keys` and the lane aliases.
    fn canonical_line_via_map(line: &str) -> Option<String> {
        let mut v: Value = serde_json::from_str(line).ok()?;
        let mut changed = rename_keys(&mut v);
        if let Value::Object(m) = &mut v {
            changed |= lane_aliases(m);
        }
        changed.then(|| pyjson::line(&v))
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

    #[test]
    fn entry_list_rewrite_agrees_with_the_map_one() {
        let slug = RENAMES[0].0;
        let number = RENAMES[1].0;
        let key = RENAMES[2].0;
        let ty = RENAMES[3].0;
        let lines = [
            format!(r#"{{"{slug}": "001-a", "to_lane": "doing", "from_lane": "planned"}}"#),
            format!(r#"{{"{slug}": "001-a", "mission_slug": "001-b"}}"#),
            format!(r#"{{"{slug}": "001-a", "mission_slug": " "}}"#),
            format!(r#"{{"mission_slug": null, "{slug}": "001-a"}}"#),
            format!(r#"{{"{key}": "x", "{ty}": "y", "{number}": "001"}}"#),
            format!(r#"{{"{slug}": "a", "{slug}": "b", "to_lane": "doing", "to_lane": "done"}}"#),
            format!(
                r#"{{"evidence": {{"{slug}": "a", "l": ["{ty}", {{"{key}": 1}}]}}, "wp_id": "WP01"}}"#
            ),
            r#"{"to_lane": "doing", "x": "\u00e9\n"}"#.to_owned(),
            r#"{"to_lane": "in_progress"}"#.to_owned(),
            r#"[{"to_lane": "doing"}]"#.to_owned(),
            r#"{}"#.to_owned(),
        ];
        for line in &lines {
            assert_eq!(canonical_line(line), canonical_line_via_map(line), "{line}");
        }
        assert!(canonical_line(&lines[0]).is_some());
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
