//! The CLI's error codes: one enum, each code with its exit status and meaning.
//!
//! A code is printed in `{"error": {"code", "message"}}` (with `--json`), in a `sync status
//! --check` check, in `sync now`'s document when the drain stopped, and as the code of a
//! `contract check` violation. The table in README.md ("Error codes") lists exactly these codes
//! (a test compares it with [`ErrorCode::ALL`]). The orchestrator-api host has its own contract
//! codes (`crate::orchestrator_api`); they are not here.

use serde::{Serialize, Serializer};

macro_rules! error_codes {
    ($($(#[$attr:meta])* $variant:ident = $code:literal, $status:literal, $meaning:literal;)*) => {
        /// A stable code the CLI prints (see the module docs).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode {
            $($(#[$attr])* #[doc = $meaning] $variant,)*
        }

        impl ErrorCode {
            /// Every code, in the order of the README table.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as printed.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            /// The exit status of a command that fails with this code.
            pub fn exit_status(self) -> u8 {
                match self {
                    $(ErrorCode::$variant => $status,)*
                }
            }

            /// What the code means, in one sentence.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $meaning,)*
                }
            }
        }
    };
}

error_codes! {
    // Usage and input (exit 2).
    UsageError = "USAGE_ERROR", 2,
        "bad arguments or unreadable input (a file or standard input that cannot be read, no JSON document found, an empty username or password)";
    InvalidInput = "INVALID_INPUT", 2,
        "an invalid slug, mission type, friendly name, branch, WP id, mission handle or subtask status";
    NotQuarantined = "NOT_QUARANTINED", 2,
        "`sync quarantine drop|retry` named an id that is not quarantined; nothing was changed";

    // Projects and missions (exit 1).
    NotAProject = "NOT_A_PROJECT", 1,
        "the current directory is not inside a spec-kitty project";
    InitFailed = "INIT_FAILED", 1,
        "`init` could not create or read the directory, the git repository or `.kittify/config.yaml`";
    IdentityError = "IDENTITY_ERROR", 1,
        "`agent mission create`, `tracker`: the project identity in `.kittify/config.yaml` could not be read or created";
    MissionNotFound = "MISSION_NOT_FOUND", 1,
        "no mission matches the handle, or more than one does";
    WpNotFound = "WP_NOT_FOUND", 1,
        "the mission has no such work package";
    SubtaskNotFound = "SUBTASK_NOT_FOUND", 1,
        "no work package of the mission lists that subtask";
    NoWorkPackages = "NO_WORK_PACKAGES", 1,
        "`finalize-tasks` found no `tasks/WPnn[-slug].md` file (the message lists what it found); nothing was written";
    WpFileNameInvalid = "WP_FILE_NAME_INVALID", 1,
        "`finalize-tasks`: a file in `tasks/` looks like a work package but is not named `WPnn.md` or `WPnn-<slug>.md`; nothing was written";
    LegacyMetadata = "LEGACY_METADATA", 1,
        "meta.json still uses pre-mission keys; run `spec-kitty upgrade`";
    StatusLogError = "STATUS_LOG_ERROR", 1,
        "the mission's status log could not be read or appended to";
    MissionError = "MISSION_ERROR", 1,
        "another mission failure (unreadable files, a dependency cycle, a git error, ...)";
    DemoFailed = "DEMO_FAILED", 1,
        "a step of `spec-kitty demo` failed";
    TransitionRejected = "TRANSITION_REJECTED", 1,
        "`agent tasks move-task`: the lane change is not allowed from the current lane or its guard is not met (the message says which; nothing was recorded)";
    DependenciesNotSatisfied = "DEPENDENCIES_NOT_SATISFIED", 1,
        "`agent tasks move-task`: a dependency of the work package is not approved or done yet (`--force --note` overrides)";
    LaneAllocationFailed = "LANE_ALLOCATION_FAILED", 1,
        "`agent tasks move-task`: the lane worktree under `.worktrees/` could not be created";
    UpgradeFailed = "UPGRADE_FAILED", 1,
        "`spec-kitty upgrade` could not read, stage or apply a change (nothing is left half done: run it again)";

    // The local sync state (exit 1).
    NoHome = "NO_HOME", 1,
        "`$HOME` is not set, so `~/.spec-kitty` cannot be found, or the spec-kitty home (or a file in it) is a symbolic link";
    QueueCorrupt = "QUEUE_CORRUPT", 1,
        "the queue file is not an SQLite database or is damaged; it is left untouched";
    QueueNewerSchema = "QUEUE_NEWER_SCHEMA", 1,
        "the queue was written by a newer spec-kitty; it is left untouched";
    QueueIncompatible = "QUEUE_INCOMPATIBLE", 1,
        "the queue's `queue` table is not upstream's; it is left untouched";
    QueueError = "QUEUE_ERROR", 1,
        "an I/O or SQLite error on the queue (for example a lock held longer than 5 s)";
    BodyQueueLegacy = "BODY_QUEUE_LEGACY", 1,
        "the body upload queue still has its pre-cutover columns; run `spec-kitty upgrade`";
    CredentialsInvalid = "CREDENTIALS_INVALID", 1,
        "the credentials file is not valid or lacks a field; run `spec-kitty auth login` again";
    CredentialsUnavailable = "CREDENTIALS_UNAVAILABLE", 1,
        "the credentials file cannot be read, written or locked";
    ReportWrite = "REPORT_WRITE", 1,
        "`sync now --report FILE` could not write FILE";
    HttpClient = "HTTP_CLIENT", 1,
        "the HTTP client could not start (for example an unreadable `SSL_CERT_FILE`)";
    Runtime = "RUNTIME", 1,
        "the async runtime could not start";

    // Sync with the server (exit 1).
    SyncDisabled = "SYNC_DISABLED", 1,
        "sync is off: set `SPEC_KITTY_ENABLE_SAAS_SYNC=1` (`sync now` reports it and exits 0)";
    InsecureServerUrl = "INSECURE_SERVER_URL", 1,
        "the server URL is not https (http is allowed only to loopback)";
    InvalidServerUrl = "INVALID_SERVER_URL", 1,
        "the server URL is not a valid plain `https://host[:port][/path]` URL";
    NotAuthenticated = "NOT_AUTHENTICATED", 1,
        "no login for the configured server; run `spec-kitty auth login`";
    SessionExpired = "SESSION_EXPIRED", 1,
        "the server refused the refresh token; run `spec-kitty auth login` again";
    InvalidLogin = "INVALID_LOGIN", 1,
        "the server refused the username or password";
    ServerUnreachable = "SERVER_UNREACHABLE", 1,
        "the server could not be reached for an auth call";
    UntrustedCertificate = "UNTRUSTED_CERTIFICATE", 1,
        "the server's TLS certificate was refused (not retried; see `SSL_CERT_FILE`)";
    ServerError = "SERVER_ERROR", 1,
        "the server answered with an unexpected HTTP status (403, 404, ...)";
    InvalidServerResponse = "INVALID_SERVER_RESPONSE", 1,
        "the server's answer to an auth call could not be understood";
    ServerUnavailable = "SERVER_UNAVAILABLE", 1,
        "429, 5xx, timeouts or connection errors outlasted the retries; the queue is untouched";
    EventsRejected = "EVENTS_REJECTED", 1,
        "`sync now` (strict, the default): the server rejected events or the gate quarantined some";
    BodiesRejected = "BODIES_REJECTED", 1,
        "`sync now` (strict, the default): the server refused artifact bodies for good, or the gate held some";

    // `contract check` violations (the command exits 1).
    InvalidJson = "INVALID_JSON", 1,
        "the input is not valid JSON from this line on";
    ContractNotAnObject = "CONTRACT_NOT_AN_OBJECT", 1,
        "the document is not a JSON object";
    ContractRequiredFieldMissing = "CONTRACT_REQUIRED_FIELD_MISSING", 1,
        "a field the surface requires is missing";
    ContractForbiddenFieldPresent = "CONTRACT_FORBIDDEN_FIELD_PRESENT", 1,
        "a field the surface forbids is present";
    ContractValueNotAllowed = "CONTRACT_VALUE_NOT_ALLOWED", 1,
        "a field's value is not one of the allowed values";
    ContractValueForbidden = "CONTRACT_VALUE_FORBIDDEN", 1,
        "a field has a forbidden value";
    ContractValueMismatch = "CONTRACT_VALUE_MISMATCH", 1,
        "a field's value differs from the one the surface requires";
    ContractLegacyField = "CONTRACT_LEGACY_FIELD", 1,
        "a feature-era field is present (at any depth)";
    ContractLegacyEventType = "CONTRACT_LEGACY_EVENT_TYPE", 1,
        "the event type is a forbidden legacy name";
    ContractLegacyAggregate = "CONTRACT_LEGACY_AGGREGATE", 1,
        "the aggregate id uses a forbidden legacy aggregate name";
    ContractUnknownEventType = "CONTRACT_UNKNOWN_EVENT_TYPE", 1,
        "the event type is not one the contract defines";
    ContractInvalid = "CONTRACT_INVALID", 1,
        "the shape rules pass but the full 3.0.0 validation does not (a type or format, a cutover rule, a model rule, a schema constraint)";

    // `tracker bind|status|unbind` (chokepoint 5).
    TrackerProvider = "TRACKER_PROVIDER", 2,
        "`tracker bind --provider` named a provider the SaaS does not serve (SaaS providers: linear, jira, github, gitlab)";
    TrackerSelectionInvalid = "TRACKER_SELECTION_INVALID", 2,
        "`tracker bind`: the chosen candidate number is out of range, or the prompt was cancelled";
    TrackerSelectionRequired = "TRACKER_SELECTION_REQUIRED", 1,
        "`tracker bind`: several candidates match and none was chosen (no terminal): use `--select N` or `--candidate-token T`";
    TrackerNoMatch = "TRACKER_NO_MATCH", 1,
        "`tracker bind`: the SaaS found no bindable resource for the provider";
    TrackerCandidateExpired = "TRACKER_CANDIDATE_EXPIRED", 1,
        "`tracker bind`: the candidate token expired again after one re-resolve; nothing was stored";
    TrackerNotBound = "TRACKER_NOT_BOUND", 1,
        "`tracker status`: the project has no binding with a `binding_ref`";
    TrackerBindingInvalid = "TRACKER_BINDING_INVALID", 1,
        "`tracker status`: the SaaS says the stored binding is not valid (reason and guidance in the message)";
    TrackerBindingStale = "TRACKER_BINDING_STALE", 1,
        "the SaaS no longer knows the stored binding (`binding_not_found`, `mapping_disabled`, `project_mismatch`): bind again";
    TrackerConfig = "TRACKER_CONFIG", 1,
        "the `tracker:` section of `.kittify/config.yaml` could not be read or written losslessly; the file is unchanged";
    TrackerIdentityMissing = "TRACKER_IDENTITY_MISSING", 1,
        "a tracker bind call carried no `project_identity`; nothing was sent";
    TrackerNoTeam = "TRACKER_NO_TEAM", 1,
        "the login has no team (`X-Team-Slug`); run `spec-kitty auth login`";
    TrackerUnreachable = "TRACKER_UNREACHABLE", 1,
        "the tracker API could not be reached (connection failed or timed out)";
    TrackerRateLimited = "TRACKER_RATE_LIMITED", 1,
        "the tracker API answered 429 again after waiting its `retry_after_seconds` once";
    TrackerActionRequired = "TRACKER_ACTION_REQUIRED", 1,
        "the tracker API refused with `user_action_required`: act in the Spec Kitty dashboard";
    TrackerServerError = "TRACKER_SERVER_ERROR", 1,
        "the tracker API refused the call (its `error_code` and message are in the message)";
    TrackerInvalidResponse = "TRACKER_INVALID_RESPONSE", 1,
        "the tracker API's answer could not be understood";
    TrackerOperationFailed = "TRACKER_OPERATION_FAILED", 1,
        "a tracker operation answered 202 and then ended `failed`";
    TrackerOperationTimeout = "TRACKER_OPERATION_TIMEOUT", 1,
        "a tracker operation answered 202 and did not end before the deadline (300 s)";
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The README table of the codes (`| code | exit | meaning |`), one row per code.
pub fn markdown_table() -> String {
    let mut out = String::from("| code | exit | meaning |\n|---|---|---|\n");
    for code in ErrorCode::ALL {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            code.as_str(),
            code.exit_status(),
            code.meaning().replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_screaming_snake() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} is used twice");
            assert!(
                !s.is_empty()
                    && !s.starts_with('_')
                    && !s.ends_with('_')
                    && !s.contains("__")
                    && s.chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{s} is not SCREAMING_SNAKE_CASE"
            );
            assert!(matches!(code.exit_status(), 1 | 2), "{s}");
            assert!(!code.meaning().is_empty(), "{s}");
        }
    }

    /// The rows of README.md's "Error codes" table: `(code, exit status, meaning)`.
    fn readme_rows() -> Vec<(String, String, String)> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let section = text
            .split("\n## Error codes\n")
            .nth(1)
            .unwrap_or_default()
            .split("\n## ")
            .next()
            .unwrap_or_default();
        section
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| {
                let inner = l.trim().trim_start_matches('|').trim_end_matches('|');
                let cells: Vec<&str> = inner.splitn(3, " | ").map(str::trim).collect();
                let cell = |i: usize| cells.get(i).copied().unwrap_or_default().to_string();
                (cell(0).trim_matches('`').to_string(), cell(1), cell(2))
            })
            .collect()
    }

    #[test]
    fn readme_lists_exactly_the_codes() {
        let expected: Vec<(String, String, String)> = ErrorCode::ALL
            .iter()
            .map(|c| {
                (
                    c.as_str().to_string(),
                    c.exit_status().to_string(),
                    c.meaning().replace('|', "\\|"),
                )
            })
            .collect();
        assert_eq!(
            readme_rows(),
            expected,
            "README.md's \"## Error codes\" table differs from ErrorCode; it should read:\n\n{}",
            markdown_table()
        );
    }
}
