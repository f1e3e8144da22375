//! Lossless edits of a work package's YAML frontmatter: set top-level keys, keep every other
//! byte (comments, order, quoting, the body) as written.
//!
//! A key that exists is replaced in place (its line and its indented or `- ` continuation
//! lines); a missing key is appended before the closing `---`. Values are written in flow style
//! (JSON is valid YAML). The result is re-parsed and compared with the original: every key that
//! was not set keeps its value, every key that was set reads back as given, else the edit is
//! refused and the file is left alone.

use serde_json::Value as Json;
use yaml_serde::Value as Yaml;

/// Set `updates` (key, value) in the frontmatter of `text`. `Ok(None)` when nothing changes.
pub fn set_fields(text: &str, updates: &[(&str, Json)]) -> Result<Option<String>, String> {
    if updates.is_empty() {
        return Ok(None);
    }
    let bom = if text.starts_with('\u{feff}') {
        "\u{feff}"
    } else {
        ""
    };
    let text = &text[bom.len()..];
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let first = lines.first().ok_or("the file is empty")?;
    if first.trim_end() != "---" {
        return Err("no YAML frontmatter".into());
    }
    let close = lines
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, l)| l.trim_end() == "---")
        .map(|(i, _)| i)
        .ok_or("the frontmatter is not closed by a `---` line")?;
    let eol = if first.ends_with("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let mut front: Vec<String> = lines[1..close].iter().map(|s| (*s).to_string()).collect();
    if let Some(last) = front.last_mut()
        && !last.ends_with('\n')
    {
        last.push_str(eol);
    }
    for (key, value) in updates {
        let rendered = format!(
            "{key}: {}{eol}",
            serde_json::to_string(value).map_err(|e| e.to_string())?
        );
        match front.iter().position(|l| is_key_line(l, key)) {
            Some(start) => {
                let mut end = start + 1;
                while end < front.len() && is_continuation(&front[end]) {
                    end += 1;
                }
                front.splice(start..end, [rendered]);
            }
            None => front.push(rendered),
        }
    }
    let old_yaml: String = lines[1..close].concat();
    let new_yaml: String = front.concat();
    verify(&old_yaml, &new_yaml, updates)?;
    if old_yaml == new_yaml {
        return Ok(None);
    }
    Ok(Some(format!(
        "{bom}{first}{new_yaml}{}",
        lines[close..].concat()
    )))
}

/// The top-level frontmatter keys of `text` whose value is not null (one parse for all the
/// keys a caller asks about); `None` when the frontmatter cannot be read.
pub fn non_null_keys(text: &str) -> Option<std::collections::BTreeSet<String>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    if lines.next()?.trim_end() != "---" {
        return None;
    }
    let yaml: String = lines.take_while(|l| l.trim_end() != "---").collect();
    let m = mapping(&yaml).ok()?;
    Some(
        m.iter()
            .filter(|(_, v)| !v.is_null())
            .filter_map(|(k, _)| k.as_str().map(str::to_owned))
            .collect(),
    )
}

fn is_key_line(line: &str, key: &str) -> bool {
    line.strip_prefix(key).is_some_and(|rest| {
        let rest = rest.trim_start_matches([' ', '\t']);
        rest.starts_with(':')
    })
}

fn is_continuation(line: &str) -> bool {
    line.starts_with([' ', '\t']) || line.starts_with("- ") || line.trim_end() == "-"
}

fn mapping(yaml: &str) -> Result<yaml_serde::Mapping, String> {
    match yaml_serde::from_str::<Yaml>(yaml)
        .map_err(|e| format!("invalid frontmatter YAML: {e}"))?
    {
        Yaml::Mapping(m) => Ok(m),
        Yaml::Null => Ok(yaml_serde::Mapping::new()),
        _ => Err("the frontmatter must be a mapping".into()),
    }
}

fn verify(old: &str, new: &str, updates: &[(&str, Json)]) -> Result<(), String> {
    let before = mapping(old)?;
    let after = mapping(new)?;
    let refused = |what: String| format!("the frontmatter cannot be edited losslessly: {what}");
    for (k, v) in &before {
        let name = k.as_str().unwrap_or_default();
        if updates.iter().any(|(u, _)| *u == name) {
            continue;
        }
        if after.get(k) != Some(v) {
            return Err(refused(format!("key {name:?} would change")));
        }
    }
    for (key, value) in updates {
        // The YAML value the JSON text reads back as (converted, not re-parsed: one parse per
        // key per file was most of finalize-tasks' frontmatter cost).
        let expected: Yaml = yaml_serde::to_value(value).map_err(|e| refused(e.to_string()))?;
        if after.get(*key) != Some(&expected) {
            return Err(refused(format!(
                "key {key:?} does not read back as written"
            )));
        }
    }
    if after.len()
        != before.len()
            + updates
                .iter()
                .filter(|(k, _)| before.get(*k).is_none())
                .count()
    {
        return Err(refused("the set of keys would change".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const WP: &str = "---\n# author's note\nwork_package_id: \"WP01\"\ntitle: 'Cart'   # keep\ndependencies:\n  - WP02\nreviewer: {name: x}\n---\n# body\n";

    #[test]
    fn appends_missing_keys_and_keeps_every_other_byte() {
        let out = set_fields(WP, &[("subtasks", json!([])), ("history", json!([]))])
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            WP.replace("---\n# body", "subtasks: []\nhistory: []\n---\n# body")
        );
    }

    #[test]
    fn replaces_a_block_value_in_place() {
        let out = set_fields(WP, &[("dependencies", json!(["WP03"]))])
            .unwrap()
            .unwrap();
        assert!(
            out.contains("dependencies: [\"WP03\"]\nreviewer: {name: x}\n"),
            "{out}"
        );
        assert!(out.contains("# author's note\n") && out.ends_with("---\n# body\n"));
    }

    #[test]
    fn unchanged_values_write_nothing() {
        let text = "---\ntitle: x\nsubtasks: []\n---\n";
        assert_eq!(set_fields(text, &[("subtasks", json!([]))]).unwrap(), None);
    }

    #[test]
    fn strings_that_need_quoting_read_back() {
        let out = set_fields(WP, &[("branch_strategy", json!("a: b # c 'd' \"e\""))])
            .unwrap()
            .unwrap();
        let front = out.split("---\n").nth(1).unwrap();
        let m = mapping(front).unwrap();
        assert_eq!(
            m.get("branch_strategy").and_then(Yaml::as_str),
            Some("a: b # c 'd' \"e\"")
        );
    }

    #[test]
    fn crlf_files_keep_their_line_ends() {
        let text = "---\r\ntitle: x\r\n---\r\nbody\r\n";
        let out = set_fields(text, &[("tags", json!([]))]).unwrap().unwrap();
        assert_eq!(out, "---\r\ntitle: x\r\ntags: []\r\n---\r\nbody\r\n");
    }

    #[test]
    fn an_edit_that_would_change_other_keys_is_refused() {
        // A multi-document trick: the continuation heuristic would swallow `other`'s value.
        let text = "---\nkey: |\n  text\nother: 1\n---\n";
        assert!(set_fields(text, &[("key", json!("new"))]).is_ok());
        let bad = "---\nkey: [1,\n2]\nother: 1\n---\n";
        assert!(set_fields(bad, &[("key", json!([]))]).is_err());
    }
}
