//! The git fields of the envelope (`git_branch`, `head_commit_sha`, `repo_slug`), as upstream's
//! `GitMetadataResolver`.
//!
//! * `git_branch` = `git rev-parse --abbrev-ref HEAD` (`HEAD` when detached), `head_commit_sha` =
//!   `git rev-parse HEAD`; `null` when git fails (no repository, unborn branch). Cached for two
//!   seconds, as upstream, so a burst of events costs two git calls, not two per event.
//! * `repo_slug` = the `project.repo_slug` override when it is a valid `owner/repo` (every
//!   `/`-separated segment non-blank), else derived from `git remote get-url origin` (SSH
//!   `git@host:owner/repo.git`, `https://`/`ssh://`/`git://` URLs, subgroups kept; `file://` and
//!   filesystem paths refused), else `null`. Resolved once per resolver.
//!
//! Resolution never fails: every problem becomes `null`, as upstream.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::repo::git;

/// Upstream's cache lifetime for branch and HEAD.
pub const BRANCH_TTL: Duration = Duration::from_secs(2);

/// The git state an envelope reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitMetadata {
    pub git_branch: Option<String>,
    pub head_commit_sha: Option<String>,
    pub repo_slug: Option<String>,
}

/// Where the git fields come from.
#[derive(Debug, Clone)]
pub enum GitSource {
    /// Ask git in this checkout (cached as described in the module docs).
    Checkout(GitResolver),
    /// Fixed values (tests, benchmarks, a project without git).
    Fixed(GitMetadata),
}

impl GitSource {
    pub fn resolve(&mut self) -> GitMetadata {
        match self {
            GitSource::Checkout(r) => r.resolve(),
            GitSource::Fixed(m) => m.clone(),
        }
    }
}

/// Resolves and caches the git fields of one checkout.
#[derive(Debug, Clone)]
pub struct GitResolver {
    dir: PathBuf,
    override_slug: Option<String>,
    cached: Option<(Instant, Option<String>, Option<String>)>,
    repo_slug: Option<Option<String>>,
}

impl GitResolver {
    /// A resolver for the checkout at `dir`; `repo_slug_override` is `project.repo_slug`.
    pub fn new(dir: &Path, repo_slug_override: Option<String>) -> Self {
        Self {
            dir: dir.to_path_buf(),
            override_slug: repo_slug_override,
            cached: None,
            repo_slug: None,
        }
    }

    pub fn resolve(&mut self) -> GitMetadata {
        let now = Instant::now();
        let (branch, sha) = match &self.cached {
            Some((at, branch, sha)) if now.duration_since(*at) < BRANCH_TTL => {
                (branch.clone(), sha.clone())
            }
            _ => {
                let branch = git::head_abbrev(&self.dir);
                let sha = git::head_sha(&self.dir);
                self.cached = Some((now, branch.clone(), sha.clone()));
                (branch, sha)
            }
        };
        let repo_slug = match &self.repo_slug {
            Some(slug) => slug.clone(),
            None => {
                let slug = self.derive_repo_slug();
                self.repo_slug = Some(slug.clone());
                slug
            }
        };
        GitMetadata {
            git_branch: branch,
            head_commit_sha: sha,
            repo_slug,
        }
    }

    fn derive_repo_slug(&self) -> Option<String> {
        if let Some(slug) = &self.override_slug {
            if valid_repo_slug(slug) {
                return Some(slug.clone());
            }
            eprintln!(
                "Warning: invalid repo_slug override '{slug}' in .kittify/config.yaml \
                 (expected owner/repo); using the origin remote instead"
            );
        }
        git::remote_url(&self.dir, "origin").and_then(|url| parse_repo_slug(&url))
    }
}

/// Upstream's `_validate_repo_slug`: contains `/` and every segment is non-blank.
pub fn valid_repo_slug(slug: &str) -> bool {
    slug.contains('/') && slug.split('/').all(|part| !part.trim().is_empty())
}

/// Upstream's `parse_repo_slug` (HEAD): `owner/repo` (with subgroups) from a hosted remote URL.
pub fn parse_repo_slug(url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty() || url.starts_with('/') || url.starts_with("./") || url.starts_with("../") {
        return None;
    }
    let path = if let Some((scheme, rest)) = url.split_once("://") {
        if scheme.eq_ignore_ascii_case("file") || scheme.is_empty() {
            return None;
        }
        // `host[:port]/path`; no host means no hosted remote.
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty() {
            return None;
        }
        path.split(['?', '#']).next().unwrap_or_default()
    } else {
        // scp-like `[user@]host:path`; the host has no `/`.
        let (host, path) = url.split_once(':')?;
        let host = host.rsplit('@').next().unwrap_or(host);
        if host.is_empty() || host.contains('/') || path.is_empty() {
            return None;
        }
        path
    };
    let path = path.trim().trim_start_matches('/').trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    (segments.len() >= 2).then(|| segments.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_urls() {
        for (url, want) in [
            ("git@github.com:owner/repo.git", Some("owner/repo")),
            ("https://github.com/owner/repo.git", Some("owner/repo")),
            ("https://github.com/owner/repo", Some("owner/repo")),
            ("ssh://git@github.com/owner/repo.git", Some("owner/repo")),
            ("ssh://git@host:22/a/b/c/", Some("a/b/c")),
            ("git@gitlab.com:org/team/repo.git\n", Some("org/team/repo")),
            ("https://github.com/repo.git", None),
            ("file:///srv/git/owner/repo.git", None),
            ("/srv/git/owner/repo.git", None),
            ("../owner/repo", None),
            ("", None),
            ("host:repo", None),
        ] {
            assert_eq!(parse_repo_slug(url).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn override_validation() {
        assert!(valid_repo_slug("owner/repo"));
        assert!(valid_repo_slug("org/team/repo"));
        assert!(!valid_repo_slug("repo"));
        assert!(!valid_repo_slug("owner/"));
        assert!(!valid_repo_slug(" /repo"));
    }

    #[test]
    fn outside_git_everything_is_null() {
        let dir = tempfile::tempdir().unwrap();
        if crate::repo::is_git_work_tree(dir.path()).unwrap_or(true) {
            return;
        }
        let mut r = GitResolver::new(dir.path(), Some("owner/repo".into()));
        let meta = r.resolve();
        assert_eq!(meta.git_branch, None);
        assert_eq!(meta.head_commit_sha, None);
        assert_eq!(meta.repo_slug.as_deref(), Some("owner/repo"));
    }
}
