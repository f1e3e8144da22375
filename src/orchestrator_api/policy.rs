//! `--policy` JSON validation (orchestrator-api.md §2, host HEAD rules).
//!
//! Order: valid JSON → object → required keys → the six string fields are strings →
//! `dangerous_flags` is an array of strings with no banned flag → `tool_restrictions` is a string
//! or null → no value anywhere looks like a secret. Unknown keys are accepted, scanned, dropped.

use serde_json::{Map, Value};

/// The recorded policy: exactly the 8 fields upstream's dataclass holds, in its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub orchestrator_id: String,
    pub orchestrator_version: String,
    pub agent_family: String,
    pub approval_mode: String,
    pub sandbox_mode: String,
    pub network_mode: String,
    pub dangerous_flags: Vec<String>,
    pub tool_restrictions: Option<String>,
}

const STRING_FIELDS: [&str; 6] = [
    "orchestrator_id",
    "orchestrator_version",
    "agent_family",
    "approval_mode",
    "sandbox_mode",
    "network_mode",
];
const REQUIRED: [&str; 7] = [
    "orchestrator_id",
    "orchestrator_version",
    "agent_family",
    "approval_mode",
    "sandbox_mode",
    "network_mode",
    "dangerous_flags",
];
/// Flags that must never appear in a policy (they disable an agent's safety prompts).
pub const BANNED_FLAGS: [&str; 4] = [
    "--full-auto",
    "--yolo",
    "--dangerous-bypass-approvals-and-sandbox",
    "--dangerously-skip-permissions",
];
const SECRET_WORDS: [&str; 5] = ["token", "secret", "key", "password", "credential"];

impl Policy {
    /// The `policy_metadata` object written into status events (upstream's `asdict` order).
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in STRING_FIELDS.iter().zip([
            &self.orchestrator_id,
            &self.orchestrator_version,
            &self.agent_family,
            &self.approval_mode,
            &self.sandbox_mode,
            &self.network_mode,
        ]) {
            m.insert((*k).to_string(), Value::String(v.clone()));
        }
        m.insert(
            "dangerous_flags".into(),
            Value::Array(
                self.dangerous_flags
                    .iter()
                    .cloned()
                    .map(Value::String)
                    .collect(),
            ),
        );
        m.insert(
            "tool_restrictions".into(),
            self.tool_restrictions
                .clone()
                .map_or(Value::Null, Value::String),
        );
        Value::Object(m)
    }
}

/// Parse and validate a `--policy` string. The error is the message of a
/// `POLICY_VALIDATION_FAILED` envelope. Values are never echoed back, so a secret is not leaked.
pub fn parse(text: &str) -> Result<Policy, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("--policy is not valid JSON: {e}"))?;
    let Value::Object(obj) = value else {
        return Err("--policy must be a JSON object".into());
    };
    for key in REQUIRED {
        if !obj.contains_key(key) {
            return Err(format!("--policy missing required field: '{key}'"));
        }
    }
    let string = |key: &str| -> Result<String, String> {
        obj.get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("--policy.{key} must be a string"))
    };
    let fields: Vec<String> = STRING_FIELDS
        .iter()
        .map(|k| string(k))
        .collect::<Result<_, _>>()?;
    let Some(Value::Array(flags)) = obj.get("dangerous_flags") else {
        return Err("--policy.dangerous_flags must be a JSON array".into());
    };
    let mut dangerous_flags = Vec::with_capacity(flags.len());
    for flag in flags {
        let Some(flag) = flag.as_str() else {
            return Err("--policy.dangerous_flags entries must be strings".into());
        };
        if BANNED_FLAGS.contains(&flag) {
            return Err(format!(
                "--policy.dangerous_flags contains a banned flag: '{flag}'. Banned flags must never appear in orchestrator policy payloads."
            ));
        }
        dangerous_flags.push(flag.to_string());
    }
    let tool_restrictions = match obj.get("tool_restrictions") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("--policy.tool_restrictions must be a string or null".into()),
    };
    if let Some(path) = find_secret(&Value::Object(obj.clone()), String::new()) {
        return Err(format!(
            "--policy field '{path}' appears to contain a secret (matched pattern: token|secret|key|password|credential). Do not pass secrets via --policy."
        ));
    }
    let mut it = fields.into_iter();
    let mut next = || it.next().unwrap_or_default();
    Ok(Policy {
        orchestrator_id: next(),
        orchestrator_version: next(),
        agent_family: next(),
        approval_mode: next(),
        sandbox_mode: next(),
        network_mode: next(),
        dangerous_flags,
        tool_restrictions,
    })
}

/// Path of the first string value (at any depth) that matches the secret pattern.
fn find_secret(value: &Value, path: String) -> Option<String> {
    match value {
        Value::String(s) => {
            let lower = s.to_lowercase();
            SECRET_WORDS
                .iter()
                .any(|w| lower.contains(w))
                .then_some(path)
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_secret(v, format!("{path}[{i}]"))),
        Value::Object(obj) => obj.iter().find_map(|(k, v)| {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            find_secret(v, p)
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"orchestrator_id": "spec-kitty-orchestrator", "orchestrator_version": "0.1.3", "agent_family": "claude", "approval_mode": "full_auto", "sandbox_mode": "workspace_write", "network_mode": "none", "dangerous_flags": [], "tool_restrictions": null}"#;

    #[test]
    fn the_clients_default_policy_is_accepted_and_recorded_verbatim() {
        let p = parse(GOOD).unwrap();
        assert_eq!(p.to_value(), serde_json::from_str::<Value>(GOOD).unwrap());
    }

    #[test]
    fn each_rule_has_its_message() {
        let mut v: Value = serde_json::from_str(GOOD).unwrap();
        type Edit = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("agent_family");
                }),
                "--policy missing required field: 'agent_family'",
            ),
            (
                Box::new(|v| v["orchestrator_version"] = 3.into()),
                "--policy.orchestrator_version must be a string",
            ),
            (
                Box::new(|v| v["dangerous_flags"] = "x".into()),
                "--policy.dangerous_flags must be a JSON array",
            ),
            (
                Box::new(|v| v["dangerous_flags"] = serde_json::json!(["--yolo"])),
                "--policy.dangerous_flags contains a banned flag: '--yolo'",
            ),
            (
                Box::new(|v| v["tool_restrictions"] = 1.into()),
                "--policy.tool_restrictions must be a string or null",
            ),
            (
                Box::new(|v| v["extra"] = serde_json::json!({"nested": ["ok", "my-TOKEN"]})),
                "--policy field 'extra.nested[1]' appears to contain a secret",
            ),
        ];
        for (edit, want) in cases {
            let mut doc = v.clone();
            edit(&mut doc);
            let err = parse(&doc.to_string()).unwrap_err();
            assert!(err.starts_with(want), "{err} != {want}");
            assert!(
                !err.contains("my-TOKEN"),
                "the secret value must not be echoed"
            );
        }
        v["extra"] = "fine".into();
        assert!(parse(&v.to_string()).is_ok(), "unknown keys are accepted");
        assert!(
            parse("not json")
                .unwrap_err()
                .starts_with("--policy is not valid JSON")
        );
        assert_eq!(parse("[]").unwrap_err(), "--policy must be a JSON object");
    }
}
