//! The CLI's 3.0.0 wire envelope, built as the generated [`Envelope`] struct from a typed
//! [`EnvelopePayload`]. No field list lives here: the struct is the list.
//!
//! | field | value |
//! |---|---|
//! | `event_id` | a new ULID (26 characters, upper case), monotonic within the process |
//! | `event_type` | the registry name of the payload's type ([`EnvelopePayload::event_type_name`]) |
//! | `aggregate_type`, `aggregate_id` | see [`aggregate_of`] |
//! | `schema_version` | `"3.0.0"` |
//! | `build_id` | the checkout's build id (`.kittify/config.yaml`, handed in by the use-case) |
//! | `node_id`, `lamport_clock` | from the Lamport clock ([`super::LamportClock`]) |
//! | `causation_id` | the caller's, normalised ([`normalize_event_id`]), or `null` |
//! | `correlation_id` | `causation_id`, else `event_id` (upstream HEAD) |
//! | `timestamp` | [`Timestamp::now`], e.g. `2026-04-06T12:00:00.123456+00:00` |
//! | `team_slug` | the logged-in team, else `"local"` |
//! | `project_uuid`, `project_slug` | `.kittify/config.yaml` `project:` |
//! | `git_branch`, `head_commit_sha`, `repo_slug` | [`super::git_meta`]; `null` when unavailable |
//! | `data_tier` | `0` |

use std::sync::{LazyLock, Mutex};

use ulid::{Generator, Ulid};
use uuid::Uuid;

use super::git_meta::GitSource;
use crate::contract::Timestamp;
use crate::contract::rules;
use crate::contract::types::{
    Envelope, EnvelopeAggregateType, EnvelopePayload, EnvelopeSchemaVersion, EventId, EventType,
    NonEmptyString,
};

/// Errors building an envelope. All of them are caller or registry errors, reported before
/// anything is written.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// A causation id that is neither a ULID nor a UUID.
    #[error("causation id {value:?} is not an event id (expected a 26-character ULID or a UUID)")]
    InvalidCausationId { value: String },
    /// An identity value the envelope cannot carry (empty build id, node id or team slug).
    #[error("cannot build an envelope: {what} is empty")]
    Empty { what: &'static str },
    /// The payload's event type or aggregate is not in the generated registry (a contract/code
    /// mismatch; regenerate `generated/`).
    #[error("event type {event_type} with aggregate {aggregate} is not in the contract's registry")]
    NotInRegistry {
        event_type: &'static str,
        aggregate: String,
    },
}

/// One event to emit: the typed payload and what the envelope cannot derive from it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDraft {
    pub payload: EnvelopePayload,
    /// `mission_id` (ULID) from the mission's meta.json. Mission events use it as their
    /// `aggregate_id` when given, else the mission slug. Ignored by other events.
    pub mission_id: Option<String>,
    /// The parent event, when there is one.
    pub causation_id: Option<String>,
    /// The event's id when it has one already (a status log line's `event_id`, so the line and
    /// its wire event are one event); a new ULID otherwise.
    pub event_id: Option<String>,
}

impl EventDraft {
    pub fn new(payload: impl Into<EnvelopePayload>) -> Self {
        Self {
            payload: payload.into(),
            mission_id: None,
            causation_id: None,
            event_id: None,
        }
    }

    pub fn with_event_id(mut self, event_id: Option<&str>) -> Self {
        self.event_id = event_id.map(str::to_owned);
        self
    }

    pub fn with_mission_id(mut self, mission_id: Option<&str>) -> Self {
        self.mission_id = mission_id.map(str::to_owned);
        self
    }

    pub fn with_causation_id(mut self, causation_id: Option<&str>) -> Self {
        self.causation_id = causation_id.map(str::to_owned);
        self
    }
}

/// What every envelope of one process and project shares.
#[derive(Debug, Clone)]
pub struct EnvelopeContext {
    pub project_uuid: Uuid,
    pub project_slug: Option<String>,
    pub build_id: NonEmptyString,
    pub team_slug: NonEmptyString,
    pub git: GitSource,
}

impl EnvelopeContext {
    /// The context of a project (`build_id` is the checkout's). The use-case reads the values
    /// from the project identity; this layer never does.
    pub fn new(
        project_uuid: Uuid,
        project_slug: &str,
        build_id: &str,
        team_slug: &str,
        git: GitSource,
    ) -> Result<Self, EnvelopeError> {
        Ok(Self {
            project_uuid,
            project_slug: Some(project_slug.to_owned()),
            build_id: non_empty(build_id, "the build id")?,
            team_slug: non_empty(team_slug, "the team slug")?,
            git,
        })
    }
}

fn non_empty(value: &str, what: &'static str) -> Result<NonEmptyString, EnvelopeError> {
    NonEmptyString::try_from(value).map_err(|_| EnvelopeError::Empty { what })
}

/// A new event id: a ULID from one process-wide monotonic generator, so ids created by one
/// process sort in creation order even within a millisecond.
pub fn new_event_id() -> Ulid {
    static GENERATOR: LazyLock<Mutex<Generator>> = LazyLock::new(|| Mutex::new(Generator::new()));
    let mut generator = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    match generator.generate() {
        Ok(id) => id,
        Err(overflow) => overflow.commit_overflow_increment(),
    }
}

/// Upstream's `normalize_event_id`: a ULID upper-cased, a UUID lower-cased, 32 hex digits
/// hyphenated and lower-cased. Anything else is refused.
pub fn normalize_event_id(raw: &str) -> Result<EventId, EnvelopeError> {
    let raw = raw.trim();
    let invalid = || EnvelopeError::InvalidCausationId {
        value: raw.to_owned(),
    };
    let normalized = if raw.len() == 26 {
        Ulid::from_string(raw).map_err(|_| invalid())?;
        raw.to_ascii_uppercase()
    } else if raw.len() == 32 || raw.len() == 36 {
        Uuid::try_parse(raw).map_err(|_| invalid())?.to_string()
    } else {
        return Err(invalid());
    };
    EventId::try_from(normalized).map_err(|_| invalid())
}

/// The envelope's `aggregate_type` and `aggregate_id` for a payload.
///
/// | event | aggregate |
/// |---|---|
/// | MissionCreated, MissionClosed | `Mission` / `mission_id` when given, else `mission_slug` |
/// | WPStatusChanged, WPCreated, WPAssigned, HistoryAdded, DependencyResolved | `WorkPackage` / `wp_id` |
/// | ErrorLogged | `WorkPackage` / `wp_id` when it has one, else `Mission` / `"error"` |
/// | MissionDossierArtifactIndexed | `MissionDossier` / `{mission_slug}:{artifact_id.path}` |
/// | MissionDossierArtifactMissing | `MissionDossier` / `{mission_slug}:{expected_identity.path}` |
/// | MissionDossierSnapshotComputed | `MissionDossier` / `{mission_slug}:{snapshot_hash}` |
/// | MissionDossierParityDriftDetected | `MissionDossier` / `{mission_slug}:drift` |
///
/// The aggregate type is checked against the registry's `aggregate_types` for the event type.
pub fn aggregate_of(
    payload: &EnvelopePayload,
    mission_id: Option<&str>,
) -> Result<(EnvelopeAggregateType, String), EnvelopeError> {
    use EnvelopeAggregateType::{Mission, MissionDossier, WorkPackage};
    use EnvelopePayload as P;
    let mission = |slug: &NonEmptyString| {
        let id = mission_id
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(slug.as_str());
        (Mission, id.to_owned())
    };
    let (kind, id) = match payload {
        P::MissionCreatedPayload(p) => mission(&p.mission_slug),
        P::MissionClosedPayload(p) => mission(&p.mission_slug),
        P::StatusTransitionPayload(p) => (WorkPackage, p.wp_id.to_string()),
        P::WpCreatedPayload(p) => (WorkPackage, p.wp_id.to_string()),
        P::WpAssignedPayload(p) => (WorkPackage, p.wp_id.to_string()),
        P::HistoryAddedPayload(p) => (WorkPackage, p.wp_id.to_string()),
        P::DependencyResolvedPayload(p) => (WorkPackage, p.wp_id.to_string()),
        P::ErrorLoggedPayload(p) => match &p.wp_id {
            Some(wp) => (WorkPackage, wp.to_string()),
            None => (Mission, "error".to_owned()),
        },
        P::MissionDossierArtifactIndexedPayload(p) => (
            MissionDossier,
            format!("{}:{}", *p.namespace.mission_slug, *p.artifact_id.path),
        ),
        P::MissionDossierArtifactMissingPayload(p) => (
            MissionDossier,
            format!(
                "{}:{}",
                *p.namespace.mission_slug, *p.expected_identity.path
            ),
        ),
        P::MissionDossierSnapshotComputedPayload(p) => (
            MissionDossier,
            format!("{}:{}", *p.namespace.mission_slug, *p.snapshot_hash),
        ),
        P::MissionDossierParityDriftDetectedPayload(p) => (
            MissionDossier,
            format!("{}:drift", *p.namespace.mission_slug),
        ),
    };
    let event_type = payload.event_type_name();
    let allowed = rules::EVENT_TYPES
        .iter()
        .find(|spec| spec.name == event_type)
        .is_some_and(|spec| spec.aggregate_types.contains(&kind.to_string().as_str()));
    if !allowed {
        return Err(EnvelopeError::NotInRegistry {
            event_type,
            aggregate: kind.to_string(),
        });
    }
    Ok((kind, id))
}

/// Build the envelope of `draft` with Lamport value `lamport` from clock node `node_id`.
pub fn build(
    ctx: &mut EnvelopeContext,
    draft: EventDraft,
    lamport: u64,
    node_id: &str,
) -> Result<Envelope, EnvelopeError> {
    let event_type_name = draft.payload.event_type_name();
    let event_type =
        EventType::try_from(event_type_name).map_err(|_| EnvelopeError::NotInRegistry {
            event_type: event_type_name,
            aggregate: String::new(),
        })?;
    let (aggregate_type, aggregate_id) = aggregate_of(&draft.payload, draft.mission_id.as_deref())?;
    let aggregate_id = non_empty(&aggregate_id, "the aggregate id")?;
    let event_id = match draft.event_id.as_deref() {
        Some(given) => normalize_event_id(given)?,
        None => {
            EventId::try_from(new_event_id().to_string()).map_err(|_| EnvelopeError::Empty {
                what: "the event id",
            })?
        }
    };
    let causation_id = draft
        .causation_id
        .as_deref()
        .map(normalize_event_id)
        .transpose()?;
    let correlation_id = causation_id.clone().unwrap_or_else(|| event_id.clone());
    let git = ctx.git.resolve();
    Ok(Envelope {
        aggregate_id,
        aggregate_type,
        build_id: ctx.build_id.clone(),
        causation_id,
        correlation_id,
        data_tier: 0,
        event_id,
        event_type,
        git_branch: git.git_branch,
        head_commit_sha: git.head_commit_sha,
        lamport_clock: lamport,
        node_id: non_empty(node_id, "the node id")?,
        payload: draft.payload,
        project_slug: ctx.project_slug.clone(),
        project_uuid: ctx.project_uuid,
        repo_slug: git.repo_slug,
        schema_version: EnvelopeSchemaVersion::Current,
        team_slug: ctx.team_slug.clone(),
        timestamp: Timestamp::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::types::{ErrorLoggedPayload, MissionCreatedPayload};
    use crate::events::git_meta::GitMetadata;

    fn ctx() -> EnvelopeContext {
        EnvelopeContext {
            project_uuid: Uuid::nil(),
            project_slug: Some("demo".into()),
            build_id: "b-1".try_into().unwrap(),
            team_slug: "local".try_into().unwrap(),
            git: GitSource::Fixed(GitMetadata::default()),
        }
    }

    fn created() -> MissionCreatedPayload {
        MissionCreatedPayload {
            mission_number: std::num::NonZeroU64::new(1).unwrap(),
            mission_slug: "001-demo".try_into().unwrap(),
            mission_type: "software-dev".try_into().unwrap(),
        }
    }

    #[test]
    fn event_ids_are_monotonic_ulids() {
        let ids: Vec<String> = (0..1000).map(|_| new_event_id().to_string()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(ids.iter().all(|id| id.len() == 26));
    }

    #[test]
    fn causation_ids_are_normalised() {
        let ulid = "01jmby7k8n3qrvx2dpfg5hwt4e";
        assert_eq!(
            normalize_event_id(ulid).unwrap().as_str(),
            "01JMBY7K8N3QRVX2DPFG5HWT4E"
        );
        assert_eq!(
            normalize_event_id("550E8400E29B41D4A716446655440000")
                .unwrap()
                .as_str(),
            "550e8400-e29b-41d4-a716-446655440000"
        );
        assert_eq!(
            normalize_event_id("550E8400-E29B-41D4-A716-446655440000")
                .unwrap()
                .as_str(),
            "550e8400-e29b-41d4-a716-446655440000"
        );
        for bad in [
            "",
            "x",
            "01JMBY7K8N3QRVX2DPFG5HWT4U",
            "not-a-uuid-at-all-really-no!",
        ] {
            assert!(normalize_event_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mission_events_prefer_the_mission_id() {
        let p = EnvelopePayload::from(created());
        let (kind, id) = aggregate_of(&p, Some("01JMBY7K8N3QRVX2DPFG5HWT4E")).unwrap();
        assert_eq!(kind, EnvelopeAggregateType::Mission);
        assert_eq!(id, "01JMBY7K8N3QRVX2DPFG5HWT4E");
        assert_eq!(aggregate_of(&p, None).unwrap().1, "001-demo");
        assert_eq!(aggregate_of(&p, Some(" ")).unwrap().1, "001-demo");
    }

    #[test]
    fn error_logged_without_a_work_package_is_a_mission_error() {
        let p = ErrorLoggedPayload {
            agent_id: None,
            error_message: "boom".try_into().unwrap(),
            error_type: "runtime".parse().unwrap(),
            stack_trace: None,
            wp_id: None,
        };
        let (kind, id) = aggregate_of(&p.clone().into(), None).unwrap();
        assert_eq!(
            (kind, id.as_str()),
            (EnvelopeAggregateType::Mission, "error")
        );
        let with_wp = ErrorLoggedPayload {
            wp_id: Some("WP02".try_into().unwrap()),
            ..p
        };
        let (kind, id) = aggregate_of(&with_wp.into(), None).unwrap();
        assert_eq!(
            (kind, id.as_str()),
            (EnvelopeAggregateType::WorkPackage, "WP02")
        );
    }

    #[test]
    fn build_fills_every_field() {
        let mut c = ctx();
        let env = build(
            &mut c,
            EventDraft::new(created()).with_causation_id(Some("01jmby7k8n3qrvx2dpfg5hwt4e")),
            7,
            "abcdefabcdef",
        )
        .unwrap();
        assert_eq!(env.lamport_clock, 7);
        assert_eq!(env.event_type, EventType::MissionCreated);
        assert_eq!(
            env.correlation_id.as_str(),
            "01JMBY7K8N3QRVX2DPFG5HWT4E",
            "correlation follows causation"
        );
        assert_eq!(env.data_tier, 0);
        let v = serde_json::to_value(&env).unwrap();
        assert_eq!(v["schema_version"], "3.0.0");
        assert!(v["git_branch"].is_null() && v["repo_slug"].is_null());
        let env = build(&mut c, EventDraft::new(created()), 8, "n").unwrap();
        assert_eq!(env.correlation_id, env.event_id);
        assert_eq!(env.causation_id, None);
    }
}
