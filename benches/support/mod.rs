//! Shared by the benchmarks: a fixed envelope context (no git, no identity file).

use spec_kitty::events::envelope::EnvelopeContext;
use spec_kitty::events::{GitMetadata, GitSource};

/// A project identity and fixed git fields, as a real checkout would give.
pub fn context(team_slug: &str) -> EnvelopeContext {
    EnvelopeContext {
        project_uuid: uuid::Uuid::new_v4(),
        project_slug: Some("spec-kitty".into()),
        build_id: "f97f4d9b-d2fa-4ce6-a7ee-9bbca7308aab"
            .try_into()
            .expect("non-empty"),
        team_slug: team_slug.try_into().expect("non-empty"),
        git: GitSource::Fixed(GitMetadata {
            git_branch: Some("main".into()),
            head_commit_sha: Some("9c00f0778af21dd8be0e3ddc1e4afc812e465d15".into()),
            repo_slug: Some("Priivacy-ai/spec-kitty".into()),
        }),
    }
}
