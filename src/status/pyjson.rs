//! Byte-exact emulation of the two Python `json.dumps` styles the status files use.
//!
//! - [`line()`]: `json.dumps(obj, sort_keys=True)` — one line, separators `", "` and
//!   `": "`, `ensure_ascii=True` (every character outside printable ASCII, and
//!   DEL, becomes a lowercase `\uXXXX` escape, astral characters a surrogate
//!   pair). Used for `status.events.jsonl` lines.
//! - [`pretty()`]: `json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False)` —
//!   item separator `","` + newline, `": "`, raw non-ASCII. Used for `status.json`.
//!
//! Keys are sorted by code point (Rust `str` order is the same as Python's).
//! Floats follow Python's `repr`: shortest round-trip digits, fixed notation
//! for decimal exponents in `-4..16` (always with a `.0` when integral), else
//! `1e+16` / `1e-05` style. Neither function appends the trailing newline.
//!
//! Limits: integers beyond `i64`/`u64` cannot be represented by
//! `serde_json::Value` (without `arbitrary_precision`) and arrive here as floats.

use std::fmt::Write as _;

use serde_json::Value;

/// `json.dumps(value, sort_keys=True)` (no trailing newline).
pub fn line(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_compact(&mut out, value, true);
    out
}

/// [`line`] of an object given as its entries (as parsed, in any order; a key given twice keeps
/// its last value, as `json.loads` and `serde_json` do). Saves building a map for one line.
pub fn line_of_entries(entries: &mut Vec<(String, Value)>) -> String {
    // Lines this CLI (or upstream) wrote have their keys sorted already: no sort then.
    if !entries.is_sorted_by(|a, b| a.0 < b.0) {
        entries.reverse();
        // Stable: of equal keys, the last given comes first now and is the one kept.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|later, first| later.0 == first.0);
    }
    if entries.is_empty() {
        return "{}".to_owned();
    }
    let mut out = String::with_capacity(256);
    out.push('{');
    for (i, (key, val)) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_str(&mut out, key, true);
        out.push_str(": ");
        write_compact(&mut out, val, true);
    }
    out.push('}');
    out
}

/// `json.dumps(value)`: like [`line`] but keys keep the map's insertion order (the
/// orchestrator-api envelope; serde_json is built with `preserve_order`).
pub fn line_unsorted(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_compact(&mut out, value, false);
    out
}

/// `json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False)` (no trailing newline).
pub fn pretty(value: &Value) -> String {
    let mut out = String::with_capacity(1024);
    write_pretty(&mut out, value, 0);
    out
}

/// An object written key by key in [`pretty`]'s format, for callers that give the keys in
/// sorted order themselves (status.json without building a `Value` tree first). `{}` when no
/// key is written, as `json.dumps` writes an empty dict.
pub(crate) struct PrettyObject<'a> {
    out: &'a mut String,
    depth: usize,
    empty: bool,
}

impl<'a> PrettyObject<'a> {
    /// An object at nesting `depth` (0 for the document).
    pub(crate) fn new(out: &'a mut String, depth: usize) -> Self {
        PrettyObject {
            out,
            depth,
            empty: true,
        }
    }

    /// Writes the separator and `"key": `; the caller writes the value next (into the
    /// returned buffer, at [`PrettyObject::child_depth`]). Keys must come in sorted order.
    pub(crate) fn key(&mut self, key: &str) -> &mut String {
        self.out.push(if self.empty { '{' } else { ',' });
        self.empty = false;
        newline_indent(self.out, self.depth + 1);
        write_str(self.out, key, false);
        self.out.push_str(": ");
        self.out
    }

    /// The depth of a value written after [`PrettyObject::key`].
    pub(crate) fn child_depth(&self) -> usize {
        self.depth + 1
    }

    /// `"key": value` for any JSON value.
    pub(crate) fn value(&mut self, key: &str, value: &Value) {
        let depth = self.child_depth();
        write_pretty(self.key(key), value, depth);
    }

    /// `"key": "text"`.
    pub(crate) fn str(&mut self, key: &str, text: &str) {
        write_str(self.key(key), text, false);
    }

    /// `"key": "text"` or `"key": null`.
    pub(crate) fn opt_str(&mut self, key: &str, text: Option<&str>) {
        match text {
            Some(t) => self.str(key, t),
            None => self.key(key).push_str("null"),
        }
    }

    /// `"key": n`.
    pub(crate) fn uint(&mut self, key: &str, n: u64) {
        let _ = write!(self.key(key), "{n}");
    }

    /// `"key": ["a", "b"]`.
    pub(crate) fn strs(&mut self, key: &str, items: &[String]) {
        let depth = self.child_depth();
        write_pretty_array(self.key(key), items, depth, |out, item| {
            write_str(out, item, false);
        });
    }

    /// Closes the object.
    pub(crate) fn finish(self) {
        if self.empty {
            self.out.push_str("{}");
        } else {
            newline_indent(self.out, self.depth);
            self.out.push('}');
        }
    }
}

fn sorted_entries(map: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    entries
}

fn write_compact(out: &mut String, value: &Value, sort: bool) {
    match value {
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            let entries = if sort {
                sorted_entries(map)
            } else {
                map.iter().collect()
            };
            for (i, (key, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(out, key, true);
                out.push_str(": ");
                write_compact(out, val, sort);
            }
            out.push('}');
        }
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_compact(out, item, sort);
            }
            out.push(']');
        }
        scalar => write_scalar(out, scalar, true),
    }
}

fn write_pretty(out: &mut String, value: &Value, depth: usize) {
    match value {
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (key, val)) in sorted_entries(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline_indent(out, depth + 1);
                write_str(out, key, false);
                out.push_str(": ");
                write_pretty(out, val, depth + 1);
            }
            newline_indent(out, depth);
            out.push('}');
        }
        Value::Array(items) => write_pretty_array(out, items, depth, |out, item| {
            write_pretty(out, item, depth + 1);
        }),
        scalar => write_scalar(out, scalar, false),
    }
}

/// `[...]` in [`pretty`]'s layout at nesting `depth`, each item written by `item`.
fn write_pretty_array<T>(
    out: &mut String,
    items: &[T],
    depth: usize,
    item: impl Fn(&mut String, &T),
) {
    if items.is_empty() {
        out.push_str("[]");
        return;
    }
    out.push('[');
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        newline_indent(out, depth + 1);
        item(out, it);
    }
    newline_indent(out, depth);
    out.push(']');
}

fn newline_indent(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn write_scalar(out: &mut String, value: &Value, ensure_ascii: bool) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(u) = n.as_u64() {
                let _ = write!(out, "{u}");
            } else if let Some(f) = n.as_f64() {
                write_float(out, f);
            }
        }
        Value::String(s) => write_str(out, s, ensure_ascii),
        Value::Array(_) | Value::Object(_) => {}
    }
}

/// Python `float.__repr__` for a finite float.
fn write_float(out: &mut String, f: f64) {
    if !f.is_finite() {
        // serde_json::Value cannot hold these; mirror Python's allow_nan output anyway.
        out.push_str(if f.is_nan() {
            "NaN"
        } else if f > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        });
        return;
    }
    // Rust's `{:e}` yields the shortest round-trip digits: "-1.2345e-7", "1e16".
    let sci = format!("{f:e}");
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (sci.as_str(), 0),
    };
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if negative {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                for _ in digits.len()..int_len {
                    out.push('0');
                }
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            for _ in 0..(-exp - 1) {
                out.push('0');
            }
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exp.unsigned_abs());
    }
}

fn write_str(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    // Runs of characters that need no escape are copied whole (the common case: profiling the
    // upgrade of a 100,000-line log showed the per-character push as its largest cost).
    let plain = |b: u8| b >= 0x20 && b != b'"' && b != b'\\' && !(ensure_ascii && b >= 0x7f);
    let bytes = s.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        let run = bytes[start..]
            .iter()
            .position(|&b| !plain(b))
            .map_or(bytes.len(), |n| start + n);
        // A run ends before an ASCII byte or a character's first byte: a char boundary.
        out.push_str(&s[start..run]);
        let Some(c) = s[run..].chars().next() else {
            break;
        };
        write_char(out, c, ensure_ascii);
        start = run + c.len_utf8();
    }
    out.push('"');
}

fn write_char(out: &mut String, c: char, ensure_ascii: bool) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{08}' => out.push_str("\\b"),
        '\u{0c}' => out.push_str("\\f"),
        c if (c as u32) < 0x20 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c if ensure_ascii && (c as u32) >= 0x7f => {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compact_matches_python_separators_and_key_order() {
        let v = json!({"b": [1, 2, {}], "a": {"z": null, "y": true}, "c": []});
        assert_eq!(
            line(&v),
            r#"{"a": {"y": true, "z": null}, "b": [1, 2, {}], "c": []}"#
        );
    }

    #[test]
    fn ensure_ascii_escapes_like_python() {
        // Expected values produced by CPython 3: json.dumps(s).
        let v = json!("é\u{7f}\u{1f600}\"\\\n\t\u{1}/<");
        assert_eq!(line(&v), r#""\u00e9\u007f\ud83d\ude00\"\\\n\t\u0001/<""#);
    }

    #[test]
    fn pretty_matches_python_indent_2_without_ascii_escapes() {
        // json.dumps({"b": {"x": [1, "é"]}, "a": {}, "c": []}, sort_keys=True,
        //            indent=2, ensure_ascii=False)
        let v = json!({"b": {"x": [1, "é\u{7f}\u{1}"]}, "a": {}, "c": []});
        let expected = "{\n  \"a\": {},\n  \"b\": {\n    \"x\": [\n      1,\n      \"é\u{7f}\\u0001\"\n    ]\n  },\n  \"c\": []\n}";
        assert_eq!(pretty(&v), expected);
    }

    /// The per-character reference the run-copying `write_str` must agree with.
    fn write_str_reference(s: &str, ensure_ascii: bool) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            write_char(&mut out, c, ensure_ascii);
        }
        out.push('"');
        out
    }

    proptest::proptest! {
        #[test]
        fn run_copying_write_str_agrees_with_the_per_character_one(s in proptest::prelude::any::<String>()) {
            for ensure_ascii in [true, false] {
                let mut out = String::new();
                write_str(&mut out, &s, ensure_ascii);
                proptest::prop_assert_eq!(out, write_str_reference(&s, ensure_ascii));
            }
        }
    }

    #[test]
    fn line_of_entries_is_line_of_the_map() {
        let v = json!({"b": [1, {"z": 1, "a": "\u{e9}"}], "a": null, "c": "x"});
        let mut entries: Vec<(String, Value)> = v
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        entries.push(("a".into(), json!("last")));
        let mut expected = v.clone();
        expected["a"] = json!("last");
        assert_eq!(line_of_entries(&mut entries), line(&expected));
        assert_eq!(line_of_entries(&mut Vec::new()), "{}");
    }

    #[test]
    fn floats_follow_python_repr() {
        let cases = [
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (1.5e-7, "1.5e-07"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (123.456, "123.456"),
            (1e22, "1e+22"),
            (2.5e-300, "2.5e-300"),
        ];
        for (f, expected) in cases {
            assert_eq!(line(&json!(f)), expected, "{f}");
        }
        assert_eq!(line(&json!(-7)), "-7");
        assert_eq!(line(&json!(u64::MAX)), "18446744073709551615");
    }
}
