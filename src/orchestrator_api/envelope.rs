//! The response envelope: exactly one JSON line on stdout, 7 keys in upstream's order
//! (`contract_version, command, timestamp, correlation_id, success, error_code, data`), Python
//! `json.dumps` formatting. It is built as the generated `OrchestratorResponse`, so the command
//! and error code can only be values of the contract's enums, and `data` passes the
//! `orchestrator_api` gate (chokepoint) before it is printed.

use serde_json::{Map, Value, json};

use crate::contract::types::{
    ErrorCode, OrchestratorCommand, OrchestratorResponse, OrchestratorResponseContractVersion,
};
use crate::contract::{Surface, Timestamp, gate};
use crate::status::pyjson;

/// `contract_version` / `api_version` this host implements.
pub const CONTRACT_VERSION: &str = "1.3.0";
/// Oldest orchestrator version this host supports.
pub const MIN_PROVIDER_VERSION: &str = "0.1.0";

/// A failed command: its contract error code, structured fields, and the message (always
/// written last in `data`).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub fields: Map<String, Value>,
    pub message: String,
    /// Exit status: 2 for parse errors, 1 otherwise.
    pub exit: u8,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            fields: Map::new(),
            message: message.into(),
            exit: 1,
        }
    }

    /// Add structured fields (they come before `message`).
    pub fn with(mut self, fields: Map<String, Value>) -> Self {
        self.fields.extend(fields);
        self
    }
}

/// What a command produced.
pub type Outcome = Result<Map<String, Value>, ApiError>;

fn correlation_id() -> String {
    format!("corr-{}", uuid::Uuid::new_v4().simple())
}

/// Render the envelope line (with trailing newline) and the exit status.
pub fn render(command: Option<&str>, outcome: Outcome) -> (String, u8) {
    let wire_command = format!("orchestrator-api.{}", command.unwrap_or("unknown"));
    let command: OrchestratorCommand = wire_command
        .parse()
        .unwrap_or(OrchestratorCommand::OrchestratorApiUnknown);
    let (success, error_code, data, exit) = match outcome {
        Ok(data) => match gated(data) {
            Ok(data) => (true, None, data, 0),
            Err(e) => failure(e),
        },
        Err(e) => failure(e),
    };
    let response = OrchestratorResponse {
        contract_version: OrchestratorResponseContractVersion::Current,
        command,
        timestamp: Timestamp::now(),
        // `corr-` + 32 lowercase hex digits, generated here: always matches the contract's pattern.
        correlation_id: correlation_id()
            .parse()
            .expect("a generated correlation id matches its pattern"),
        success,
        error_code,
        data,
    };
    (line(&response), exit)
}

fn failure(e: ApiError) -> (bool, Option<ErrorCode>, Map<String, Value>, u8) {
    let mut data = e.fields;
    data.remove("message");
    data.insert("message".into(), Value::String(e.message));
    (false, Some(e.code), data, e.exit)
}

/// Chokepoint: mission-scoped payloads pass the `orchestrator_api` gate before they are printed.
fn gated(data: Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    if !data.contains_key("mission_slug") {
        return Ok(data);
    }
    let value = Value::Object(data);
    match gate(Surface::OrchestratorApi, &value) {
        Ok(()) => match value {
            Value::Object(data) => Ok(data),
            _ => Ok(Map::new()),
        },
        Err(v) => {
            eprintln!("internal error: refusing to print a response that breaks the contract: {v}");
            Err(ApiError::new(
                ErrorCode::PreflightFailed,
                format!("internal contract violation: {v}"),
            ))
        }
    }
}

/// The 7 keys in upstream's order, formatted as Python's `json.dumps`.
fn line(r: &OrchestratorResponse) -> String {
    let mut m = Map::new();
    m.insert(
        "contract_version".into(),
        json!(r.contract_version.to_string()),
    );
    m.insert("command".into(), json!(r.command.to_string()));
    m.insert("timestamp".into(), json!(r.timestamp.to_string()));
    m.insert("correlation_id".into(), json!(r.correlation_id.to_string()));
    m.insert("success".into(), json!(r.success));
    m.insert(
        "error_code".into(),
        r.error_code.map_or(Value::Null, |c| json!(c.to_string())),
    );
    m.insert("data".into(), Value::Object(r.data.clone()));
    let mut out = pyjson::line_unsorted(&Value::Object(m));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_seven_keys_in_order_and_message_last() {
        let mut fields = Map::new();
        fields.insert("message".into(), json!("early"));
        fields.insert("claimed_by".into(), json!("a"));
        let (line, exit) = render(
            Some("start-implementation"),
            Err(ApiError::new(ErrorCode::WpAlreadyClaimed, "taken").with(fields)),
        );
        assert_eq!(exit, 1);
        assert!(
            line.ends_with("\"data\": {\"claimed_by\": \"a\", \"message\": \"taken\"}}\n"),
            "{line}"
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "contract_version",
                "command",
                "timestamp",
                "correlation_id",
                "success",
                "error_code",
                "data"
            ]
        );
        assert_eq!(v["error_code"], "WP_ALREADY_CLAIMED");
        assert!(line.starts_with("{\"contract_version\": \"1.3.0\", \"command\": \"orchestrator-api.start-implementation\", "));
    }

    #[test]
    fn unknown_commands_render_as_orchestrator_api_unknown() {
        let (line, _) = render(
            None,
            Err(ApiError {
                exit: 2,
                ..ApiError::new(ErrorCode::UsageError, "Missing command.")
            }),
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["command"], "orchestrator-api.unknown");
        assert!(v["correlation_id"].as_str().unwrap().starts_with("corr-"));
    }

    #[test]
    fn the_gate_blocks_a_legacy_field_in_data() {
        let mut data = Map::new();
        data.insert("mission_slug".into(), json!("001-x"));
        data.insert(
            crate::contract::rules::LEGACY_KEYS[0].into(),
            json!("001-x"),
        );
        let (line, exit) = render(Some("mission-state"), Ok(data));
        assert_eq!(exit, 1);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["success"], false);
        assert_eq!(
            v["data"].as_object().unwrap().len(),
            1,
            "only the message is printed: {line}"
        );
    }
}
