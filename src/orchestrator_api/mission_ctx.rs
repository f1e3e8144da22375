//! What every command shares: opening the mission named on the command line, its errors as
//! contract codes, and the identity prefix of mission-scoped payloads.

use serde_json::{Map, Value, json};

use super::envelope::ApiError;
use crate::contract::types::ErrorCode as Code;
use crate::mission::MissionError;
use crate::mission::workflow::MissionContext;
use crate::repo;

pub(crate) fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The identity prefix of every mission-scoped payload.
pub(crate) fn identity(ctx: &MissionContext) -> Map<String, Value> {
    obj(json!({
        "mission_slug": ctx.meta.mission_slug,
        "mission_number": ctx.meta.mission_number,
        "mission_type": ctx.meta.mission_type,
    }))
}

pub(crate) fn with_identity(ctx: &MissionContext, rest: Value) -> Map<String, Value> {
    let mut m = identity(ctx);
    m.extend(obj(rest));
    m
}

pub(crate) fn open(handle: &str) -> Result<MissionContext, ApiError> {
    let root = repo::locate_project_root_from_cwd().map_err(|e| {
        ApiError::new(
            Code::MissionNotFound,
            format!("Mission '{handle}' not found: {e}"),
        )
    })?;
    MissionContext::open(&root, handle).map_err(|e| mission_error(handle, e))
}

pub(crate) fn mission_error(handle: &str, e: MissionError) -> ApiError {
    match e {
        MissionError::NotFound { .. } => ApiError::new(Code::MissionNotFound, e.to_string()),
        MissionError::Ambiguous { ref candidates, .. } => {
            let fields = obj(json!({"candidates": candidates}));
            ApiError::new(Code::MissionNotFound, e.to_string()).with(fields)
        }
        MissionError::WpNotFound { .. } | MissionError::InvalidWpId { .. } => {
            ApiError::new(Code::WpNotFound, e.to_string())
        }
        other if handle.is_empty() => ApiError::new(
            Code::MissionNotFound,
            format!("The mission cannot be read: {other}"),
        ),
        other => ApiError::new(
            Code::MissionNotFound,
            format!("Mission '{handle}' cannot be read: {other}"),
        ),
    }
}
