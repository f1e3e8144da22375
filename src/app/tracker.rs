//! `tracker bind | status | unbind`: the use-cases over the tracker client (chokepoint 5,
//! [`crate::saas::tracker`]) and the project's `tracker:` binding
//! ([`crate::identity::tracker_binding`]). Upstream: `tracker/saas_service.py`.
//!
//! **bind**: resolve the project identity → pick (exact match: its token, or its existing
//! `binding_ref` stored as is; candidates: `--select N`, `--candidate-token T`, or the caller's
//! prompt) → confirm with a fresh `Idempotency-Key` → store the binding. When the server
//! answers `invalid_candidate_token`, the identity is resolved once more and the same choice
//! (the same position; an exact match) is confirmed; a second expiry is an error. Nothing is
//! stored unless the server confirmed.
//!
//! **status**: `bind-validate` of the stored `binding_ref`; nothing is written.
//! **unbind**: removes `tracker:` (provider unlinking stays a dashboard action, as upstream).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use uuid::Uuid;

use crate::contract::types::{NonEmptyString, TrackerBindIdentity};
use crate::identity::tracker_binding::{self, TrackerBinding};
use crate::identity::{IdentityError, ProjectIdentity};
use crate::saas::tracker::{Client, STALE_BINDING_CODES, TrackerError};
use crate::saas::tracker_bind::{Candidate, MatchType, Resolution};

/// Providers the SaaS control plane serves (upstream `SAAS_PROVIDERS`).
pub const SAAS_PROVIDERS: &[&str] = &["github", "gitlab", "jira", "linear"];
/// Upstream's local providers (direct connectors); not part of this CLI.
pub const LOCAL_PROVIDERS: &[&str] = &["beads", "fp"];
/// Providers upstream removed.
pub const REMOVED_PROVIDERS: &[&str] = &["azure_devops"];

/// Why a tracker use-case failed.
#[derive(Debug, thiserror::Error)]
pub enum TrackerAppError {
    #[error(transparent)]
    Tracker(#[from] TrackerError),
    #[error(transparent)]
    Config(#[from] IdentityError),
    #[error("{0}")]
    Provider(String),
    #[error(
        "no bindable resources found for provider '{provider}'; verify the tracker is connected \
         in the Spec Kitty dashboard"
    )]
    NoMatch { provider: String },
    #[error(
        "{} resources match for provider '{provider}'; choose one with --select N or \
         --candidate-token T:\n{}",
        candidates.len(),
        list(candidates)
    )]
    SelectionRequired {
        provider: String,
        candidates: Vec<Candidate>,
    },
    #[error("selection {select} is out of range; valid range: 1-{count}")]
    SelectionOutOfRange { select: u32, count: usize },
    #[error("{0}")]
    SelectionCancelled(String),
    #[error("the candidate token expired and {0}; run `spec-kitty tracker bind` again")]
    CandidateExpired(String),
    #[error("this project has no tracker binding{0}; run `spec-kitty tracker bind --provider P`")]
    NotBound(&'static str),
    #[error(
        "tracker binding '{binding_ref}' is stale: {source}. Run `spec-kitty tracker bind \
         --provider {provider}` to rebind"
    )]
    Stale {
        binding_ref: String,
        provider: String,
        source: Box<TrackerError>,
    },
    #[error("binding ref '{binding_ref}' is not valid: {reason}. {guidance}")]
    Invalid {
        binding_ref: String,
        reason: String,
        guidance: String,
    },
}

fn list(candidates: &[Candidate]) -> String {
    let mut sorted: Vec<&Candidate> = candidates.iter().collect();
    sorted.sort_by_key(|c| c.sort_position);
    sorted
        .iter()
        .map(|c| {
            format!(
                "  {}. {} ({} confidence; {}) token {}",
                c.sort_position + 1,
                c.display_label,
                c.confidence,
                c.match_reason,
                c.candidate_token
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

impl TrackerAppError {
    /// The stable code (see the README's error table).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Tracker(e) => e.code(),
            Self::Config(_) => "TRACKER_CONFIG",
            Self::Provider(_) => "TRACKER_PROVIDER",
            Self::NoMatch { .. } => "TRACKER_NO_MATCH",
            Self::SelectionRequired { .. } => "TRACKER_SELECTION_REQUIRED",
            Self::SelectionOutOfRange { .. } | Self::SelectionCancelled(_) => {
                "TRACKER_SELECTION_INVALID"
            }
            Self::CandidateExpired(_) => "TRACKER_CANDIDATE_EXPIRED",
            Self::NotBound(_) => "TRACKER_NOT_BOUND",
            Self::Stale { .. } => "TRACKER_BINDING_STALE",
            Self::Invalid { .. } => "TRACKER_BINDING_INVALID",
        }
    }
}

/// The provider name as upstream normalizes it (trimmed, lowercase), if the SaaS serves it.
pub fn saas_provider(raw: &str) -> Result<String, TrackerAppError> {
    let p = raw.trim().to_ascii_lowercase();
    if SAAS_PROVIDERS.contains(&p.as_str()) {
        Ok(p)
    } else if REMOVED_PROVIDERS.contains(&p.as_str()) {
        Err(TrackerAppError::Provider(format!(
            "provider '{p}' is no longer supported"
        )))
    } else if LOCAL_PROVIDERS.contains(&p.as_str()) {
        Err(TrackerAppError::Provider(format!(
            "provider '{p}' is a local connector, which this CLI does not implement; SaaS \
             providers: {}",
            SAAS_PROVIDERS.join(", ")
        )))
    } else {
        Err(TrackerAppError::Provider(format!(
            "unknown provider '{p}'; SaaS providers: {}",
            SAAS_PROVIDERS.join(", ")
        )))
    }
}

fn text(field: &str, value: &str) -> Result<NonEmptyString, TrackerAppError> {
    NonEmptyString::try_from(value).map_err(|_| {
        TrackerAppError::Config(IdentityError::InvalidField {
            path: PathBuf::from(".kittify/config.yaml"),
            key: field.to_owned(),
            reason: "it is empty".to_owned(),
        })
    })
}

/// The wire identity of the project, field by field (the checkout's own build id).
pub fn bind_identity(id: &ProjectIdentity) -> Result<TrackerBindIdentity, TrackerAppError> {
    Ok(TrackerBindIdentity {
        uuid: id.uuid,
        slug: text("slug", &id.slug)?,
        node_id: text("node_id", &id.node_id)?,
        repo_slug: id.repo_slug.clone(),
        build_id: text("build_id", &id.build_id)?,
    })
}

/// How `bind` picks among candidates.
pub enum Pick<'a> {
    /// `--select N` (1-based).
    Select(u32),
    /// `--candidate-token T`.
    Token(String),
    /// Ask (a terminal prompt): the 1-based choice, or `Err(why)` to cancel.
    Ask(&'a mut dyn FnMut(&Resolution) -> Result<u32, String>),
    /// Refuse to choose (no terminal).
    Refuse,
}

/// What `bind` stored.
#[derive(Debug, Clone, Serialize)]
pub struct BindOutcome {
    pub provider: String,
    pub binding_ref: String,
    pub display_label: Option<String>,
    pub provider_context: BTreeMap<String, String>,
    /// The server's `bound_at` (empty for an existing mapping, as upstream).
    pub bound_at: String,
    /// `existing` (resolve found this project's binding) or `confirmed`.
    pub via: &'static str,
    /// The identity was resolved again after `invalid_candidate_token`.
    pub re_resolved: bool,
    /// The config file written.
    pub config: PathBuf,
}

fn persist(
    config: &Path,
    provider: &str,
    binding_ref: &str,
    display_label: Option<String>,
    provider_context: BTreeMap<String, String>,
) -> Result<(), TrackerAppError> {
    let old = tracker_binding::read(config)?;
    let same = old.provider.as_deref() == Some(provider);
    let binding = TrackerBinding {
        provider: Some(provider.to_owned()),
        binding_ref: Some(binding_ref.to_owned()),
        display_label: display_label.or_else(|| old.display_label.clone().filter(|_| same)),
        provider_context,
        project_slug: old.project_slug.clone().filter(|_| same),
        workspace: old.workspace.clone().filter(|_| same),
    };
    tracker_binding::save(config, &binding)?;
    Ok(())
}

/// Bind the project (see the module docs).
pub async fn bind(
    client: &mut Client<'_>,
    config: &Path,
    identity: &TrackerBindIdentity,
    provider: &str,
    mut pick: Pick<'_>,
) -> Result<BindOutcome, TrackerAppError> {
    let mut re_resolved = false;
    loop {
        let resolution = client.bind_resolve(provider, identity).await?;
        let token = match resolution.match_type {
            MatchType::None => {
                return Err(TrackerAppError::NoMatch {
                    provider: provider.to_owned(),
                });
            }
            MatchType::Exact => match (&resolution.binding_ref, &resolution.candidate_token) {
                (Some(binding_ref), _) => {
                    persist(
                        config,
                        provider,
                        binding_ref,
                        resolution.display_label.clone(),
                        BTreeMap::new(),
                    )?;
                    return Ok(BindOutcome {
                        provider: provider.to_owned(),
                        binding_ref: binding_ref.clone(),
                        display_label: resolution.display_label.clone(),
                        provider_context: BTreeMap::new(),
                        bound_at: String::new(),
                        via: "existing",
                        re_resolved,
                        config: config.to_path_buf(),
                    });
                }
                (None, Some(token)) => token.clone(),
                (None, None) => {
                    return Err(TrackerError::InvalidResponse {
                        path: crate::saas::tracker::paths::BIND_RESOLVE.to_owned(),
                        detail: "an exact match without binding_ref or candidate_token".into(),
                    }
                    .into());
                }
            },
            MatchType::Candidates => {
                let chosen = match &mut pick {
                    Pick::Select(n) => Some(*n),
                    Pick::Ask(ask) => {
                        let n = ask(&resolution).map_err(TrackerAppError::SelectionCancelled)?;
                        // A re-resolve after expiry confirms the same position.
                        pick = Pick::Select(n);
                        Some(n)
                    }
                    Pick::Token(_) if re_resolved => {
                        return Err(TrackerAppError::CandidateExpired(
                            "the retry found several candidates".to_owned(),
                        ));
                    }
                    Pick::Token(_) => None,
                    Pick::Refuse => {
                        return Err(TrackerAppError::SelectionRequired {
                            provider: provider.to_owned(),
                            candidates: resolution.candidates.clone(),
                        });
                    }
                };
                match (chosen, &pick) {
                    (Some(n), _) => resolution
                        .by_position(n)
                        .ok_or(TrackerAppError::SelectionOutOfRange {
                            select: n,
                            count: resolution.candidates.len(),
                        })?
                        .candidate_token
                        .clone(),
                    (None, Pick::Token(t)) => t.clone(),
                    (None, _) => {
                        return Err(TrackerAppError::SelectionCancelled(
                            "no candidate was chosen".to_owned(),
                        ));
                    }
                }
            }
        };
        match client
            .bind_confirm(provider, &token, identity, Uuid::new_v4())
            .await
        {
            Ok(bound) => {
                persist(
                    config,
                    provider,
                    &bound.binding_ref,
                    Some(bound.display_label.clone()),
                    bound.provider_context.clone(),
                )?;
                return Ok(BindOutcome {
                    provider: provider.to_owned(),
                    binding_ref: bound.binding_ref,
                    display_label: Some(bound.display_label),
                    provider_context: bound.provider_context,
                    bound_at: bound.bound_at,
                    via: "confirmed",
                    re_resolved,
                    config: config.to_path_buf(),
                });
            }
            Err(e) if e.server_code() == Some("invalid_candidate_token") => {
                if re_resolved {
                    return Err(TrackerAppError::CandidateExpired(
                        "expired again after resolving once more".to_owned(),
                    ));
                }
                re_resolved = true;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// What `tracker status` found.
#[derive(Debug, Clone, Serialize)]
pub struct StatusOutcome {
    pub configured: bool,
    pub provider: Option<String>,
    pub binding_ref: Option<String>,
    pub display_label: Option<String>,
    pub provider_context: BTreeMap<String, String>,
    /// The server's verdict (`None`: not asked, nothing is bound).
    pub valid: Option<bool>,
}

/// The stored binding, before any call.
pub fn stored(config: &Path) -> Result<TrackerBinding, TrackerAppError> {
    Ok(tracker_binding::read(config)?)
}

/// Validate the stored binding with the server (nothing is written).
pub async fn status(
    client: &mut Client<'_>,
    binding: &TrackerBinding,
    identity: &TrackerBindIdentity,
) -> Result<StatusOutcome, TrackerAppError> {
    let (Some(provider), Some(binding_ref)) = (&binding.provider, &binding.binding_ref) else {
        return Err(TrackerAppError::NotBound(
            " with a binding_ref (an older project_slug binding cannot be validated)",
        ));
    };
    let v = match client.bind_validate(provider, binding_ref, identity).await {
        Ok(v) => v,
        Err(e)
            if e.server_code()
                .is_some_and(|c| STALE_BINDING_CODES.contains(&c)) =>
        {
            return Err(TrackerAppError::Stale {
                binding_ref: binding_ref.clone(),
                provider: provider.clone(),
                source: Box::new(e),
            });
        }
        Err(e) => return Err(e.into()),
    };
    if !v.valid {
        return Err(TrackerAppError::Invalid {
            binding_ref: binding_ref.clone(),
            reason: v.reason.unwrap_or_else(|| "unknown reason".to_owned()),
            guidance: v.guidance.unwrap_or_default(),
        });
    }
    Ok(StatusOutcome {
        configured: true,
        provider: Some(v.provider.unwrap_or_else(|| provider.clone())),
        binding_ref: Some(v.binding_ref),
        display_label: v.display_label.or_else(|| binding.display_label.clone()),
        provider_context: v
            .provider_context
            .unwrap_or_else(|| binding.provider_context.clone()),
        valid: Some(true),
    })
}

/// Remove the binding; whether there was one.
pub fn unbind(config: &Path) -> Result<bool, TrackerAppError> {
    Ok(tracker_binding::clear(config)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_are_upstreams() {
        assert_eq!(saas_provider(" Jira ").unwrap(), "jira");
        for bad in ["beads", "azure_devops", "trello"] {
            assert_eq!(saas_provider(bad).unwrap_err().code(), "TRACKER_PROVIDER");
        }
    }
}
