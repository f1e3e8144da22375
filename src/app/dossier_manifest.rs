//! The mission types' expected-artifact manifests (upstream's
//! `missions/<type>/expected-artifacts.yaml`, v3.1.0), as data: which artifacts each step
//! requires and which are optional throughout. The dossier pipeline classifies files and
//! detects missing required artifacts with them.

use crate::contract::types::ArtifactClass;

/// One expected artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub key: &'static str,
    pub class: ArtifactClass,
    /// Relative to the mission directory; `*` matches within a segment, `**` across segments.
    pub pattern: &'static str,
    pub blocking: bool,
}

/// A mission type's manifest.
#[derive(Debug, Clone, Copy)]
pub struct Manifest {
    pub mission_type: &'static str,
    pub manifest_version: &'static str,
    pub required_always: &'static [Expected],
    pub required_by_step: &'static [(&'static str, &'static [Expected])],
    pub optional_always: &'static [Expected],
}

use ArtifactClass::{Evidence, Input, Output, Workflow};

const fn e(
    key: &'static str,
    class: ArtifactClass,
    pattern: &'static str,
    blocking: bool,
) -> Expected {
    Expected {
        key,
        class,
        pattern,
        blocking,
    }
}

const SOFTWARE_DEV: Manifest = Manifest {
    mission_type: "software-dev",
    manifest_version: "1",
    required_always: &[],
    required_by_step: &[
        ("discovery", &[]),
        ("specify", &[e("input.spec.main", Input, "spec.md", true)]),
        (
            "plan",
            &[
                e("output.plan.main", Output, "plan.md", true),
                e("output.tasks.list", Output, "tasks.md", true),
            ],
        ),
        ("implement", &[]),
        ("review", &[]),
        ("done", &[]),
    ],
    optional_always: &[
        e("evidence.research", Evidence, "research.md", false),
        e("evidence.gap-analysis", Evidence, "gap-analysis.md", false),
        e("evidence.quickstart", Evidence, "quickstart.md", false),
        e("evidence.data-model", Evidence, "data-model.md", false),
    ],
};

const RESEARCH: Manifest = Manifest {
    mission_type: "research",
    manifest_version: "1",
    required_always: &[],
    required_by_step: &[
        (
            "scoping",
            &[e("input.spec.research", Input, "spec.md", true)],
        ),
        (
            "methodology",
            &[e("workflow.plan.methodology", Workflow, "plan.md", true)],
        ),
        ("gathering", &[]),
        (
            "synthesis",
            &[e("output.findings.main", Output, "findings.md", true)],
        ),
        (
            "output",
            &[e("output.report.publication", Output, "report.md", true)],
        ),
        ("done", &[]),
    ],
    optional_always: &[
        e(
            "evidence.methodology.detailed",
            Evidence,
            "methodology.md",
            false,
        ),
        e("evidence.synthesis.notes", Evidence, "synthesis.md", false),
        e(
            "evidence.literature-review",
            Evidence,
            "literature-review.md",
            false,
        ),
        e("evidence.gap-analysis", Evidence, "gap-analysis.md", false),
        e("evidence.research-log", Evidence, "research.md", false),
    ],
};

const DOC_PLAN: &[Expected] = &[
    e("workflow.plan.documentation", Workflow, "plan.md", true),
    e("workflow.tasks.documentation", Workflow, "tasks.md", true),
];

const DOCUMENTATION: Manifest = Manifest {
    mission_type: "documentation",
    manifest_version: "1",
    required_always: &[],
    required_by_step: &[
        (
            "discover",
            &[e("input.spec.documentation", Input, "spec.md", true)],
        ),
        (
            "audit",
            &[
                DOC_PLAN[0],
                DOC_PLAN[1],
                e("evidence.gap-analysis", Evidence, "gap-analysis.md", true),
            ],
        ),
        ("design", DOC_PLAN),
        (
            "generate",
            &[e("output.docs.generated", Output, "docs/**/*.md", false)],
        ),
        ("validate", &[]),
        ("publish", &[]),
    ],
    optional_always: &[
        e("evidence.research", Evidence, "research.md", false),
        e("evidence.data-model", Evidence, "data-model.md", false),
        e("evidence.quickstart", Evidence, "quickstart.md", false),
        e("evidence.audit-report", Evidence, "audit-report.md", false),
    ],
};

/// The manifest of `mission_type`, if it has one.
pub fn manifest(mission_type: &str) -> Option<&'static Manifest> {
    [&SOFTWARE_DEV, &RESEARCH, &DOCUMENTATION]
        .into_iter()
        .find(|m| m.mission_type == mission_type)
}

impl Manifest {
    /// Every expected artifact, required ones first (upstream's classification order).
    pub fn all(&self) -> impl Iterator<Item = &Expected> {
        self.required_always
            .iter()
            .chain(
                self.required_by_step
                    .iter()
                    .flat_map(|(_, specs)| specs.iter()),
            )
            .chain(self.optional_always.iter())
    }

    /// The artifacts required at `step` (with those required always).
    pub fn required_at(&self, step: Option<&str>) -> Vec<(&'static str, Expected)> {
        let mut out: Vec<(&'static str, Expected)> = self
            .required_always
            .iter()
            .map(|e| ("always", *e))
            .collect();
        if let Some(step) = step
            && let Some((name, specs)) = self.required_by_step.iter().find(|(s, _)| *s == step)
        {
            out.extend(specs.iter().map(|e| (*name, *e)));
        }
        out
    }
}

/// Does `path` (relative, `/`-separated) match `pattern` (`*` within a segment, `**` any
/// number of segments)?
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').collect();
    let s: Vec<&str> = path.split('/').collect();
    segments(&p, &s)
}

fn segments(p: &[&str], s: &[&str]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((&"**", rest)) => (0..=s.len()).any(|i| segments(rest, &s[i..])),
        Some((first, rest)) => match s.split_first() {
            Some((seg, srest)) => {
                segment(first.as_bytes(), seg.as_bytes()) && segments(rest, srest)
            }
            None => false,
        },
    }
}

fn segment(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| segment(rest, &s[i..])),
        Some((c, rest)) => s.first() == Some(c) && segment(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("spec.md", "spec.md"));
        assert!(!glob_match("spec.md", "x/spec.md"));
        assert!(glob_match("docs/**/*.md", "docs/a.md"));
        assert!(glob_match("docs/**/*.md", "docs/a/b/c.md"));
        assert!(!glob_match("docs/**/*.md", "docs/a/b/c.txt"));
        assert!(glob_match("tasks/*.md", "tasks/WP01.md"));
    }

    #[test]
    fn manifests() {
        let m = manifest("software-dev").unwrap();
        assert_eq!(m.required_at(Some("plan")).len(), 2);
        assert!(m.required_at(None).is_empty());
        assert!(manifest("unknown").is_none());
        assert_eq!(
            manifest("documentation")
                .unwrap()
                .required_at(Some("audit"))
                .len(),
            3
        );
    }
}
