//! The orchestrator's calls as argv, the way spec-kitty-orchestrator makes them (one place for
//! the demo and the host's tests, so the flow they drive cannot drift apart).

use serde_json::json;

/// The calls of one orchestrator (actor and policy) on one mission.
#[derive(Debug, Clone, Copy)]
pub struct Calls<'a> {
    pub mission: &'a str,
    pub actor: &'a str,
    /// The policy JSON the orchestrator sends with every write.
    pub policy: &'a str,
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_owned()).collect()
}

impl Calls<'_> {
    fn wp_call(&self, command: &str, wp: &str, rest: &[&str]) -> Vec<String> {
        let mut v = argv(&[
            command,
            "--mission",
            self.mission,
            "--wp",
            wp,
            "--actor",
            self.actor,
        ]);
        v.extend(argv(rest));
        v
    }

    pub fn list_ready(&self) -> Vec<String> {
        argv(&["list-ready", "--mission", self.mission])
    }

    pub fn mission_state(&self) -> Vec<String> {
        argv(&["mission-state", "--mission", self.mission])
    }

    pub fn start_implementation(&self, wp: &str) -> Vec<String> {
        self.wp_call("start-implementation", wp, &["--policy", self.policy])
    }

    pub fn append_history(&self, wp: &str, note: &str) -> Vec<String> {
        self.wp_call("append-history", wp, &["--note", note])
    }

    /// `transition --to for_review` after the implementation.
    pub fn to_review(&self, wp: &str, note: &str) -> Vec<String> {
        self.wp_call(
            "transition",
            wp,
            &[
                "--to",
                "for_review",
                "--note",
                note,
                "--policy",
                self.policy,
            ],
        )
    }

    pub fn start_review(&self, wp: &str, review_ref: &str) -> Vec<String> {
        self.wp_call(
            "start-review",
            wp,
            &["--policy", self.policy, "--review-ref", review_ref],
        )
    }

    /// The reviewer's approval: `transition --to done` with evidence and the review result.
    pub fn approve(&self, wp: &str, review_ref: &str, reviewer: &str, note: &str) -> Vec<String> {
        let result = json!({"reference": review_ref, "reviewer": reviewer, "verdict": "approved"});
        let evidence = json!({"review": result}).to_string();
        let result = result.to_string();
        self.wp_call(
            "transition",
            wp,
            &[
                "--to",
                "done",
                "--note",
                note,
                "--review-ref",
                review_ref,
                "--evidence-json",
                &evidence,
                "--review-result-json",
                &result,
                "--policy",
                self.policy,
            ],
        )
    }

    /// The reviewer's rejection: back to `in_progress` with the review result.
    pub fn reject(&self, wp: &str, review_ref: &str, reviewer: &str, note: &str) -> Vec<String> {
        let result =
            json!({"reference": review_ref, "reviewer": reviewer, "verdict": "changes_requested"})
                .to_string();
        self.wp_call(
            "transition",
            wp,
            &[
                "--to",
                "in_progress",
                "--note",
                note,
                "--review-ref",
                review_ref,
                "--review-result-json",
                &result,
                "--policy",
                self.policy,
            ],
        )
    }

    pub fn accept(&self) -> Vec<String> {
        argv(&[
            "accept-mission",
            "--mission",
            self.mission,
            "--actor",
            self.actor,
        ])
    }

    pub fn merge(&self) -> Vec<String> {
        argv(&["merge-mission", "--mission", self.mission])
    }
}
