#!/usr/bin/env python3
"""Drive one project alternately with this CLI and the published spec-kitty-cli (Python).

Not a test and not a CI dependency: a scripted version of the side-by-side check of issue 17.
Install the published CLI in a scratch venv first, for example

    python3 -m venv /tmp/up && /tmp/up/bin/pip install spec-kitty-cli==3.2.7

then run (from the repository root, after `cargo build`)

    python3 bench/side_by_side.py --upstream /tmp/up/bin/spec-kitty [--ours target/debug/spec-kitty]

Everything happens in a temporary directory with its own HOME (the Python CLI writes into
HOME). Each step names the CLI that runs it; the script stops at the first failing step and
prints its output. At the end both CLIs must report the same lanes (`mission-state`).
Figures: none; the floor would be one process spawn per step (the Python CLI's start-up
dominates, about 1-2 s per call here).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

POLICY = json.dumps({
    "orchestrator_id": "spec-kitty-orchestrator", "orchestrator_version": "0.1.3",
    "agent_family": "claude", "approval_mode": "full_auto", "sandbox_mode": "workspace_write",
    "network_mode": "none", "dangerous_flags": [], "tool_restrictions": None,
})

WP = """---
work_package_id: "{id}"
title: "{title}"
dependencies: {deps}
subtasks: ["{subtask}"]
owned_files: ["src/{file}"]
---
# {id} {title}

Implement src/{file}.
"""


class Run:
    def __init__(self, ours, upstream, root, home):
        self.cli = {"ours": ours, "upstream": upstream}
        self.root = root
        self.env = dict(os.environ, HOME=home, COLUMNS="200", GIT_AUTHOR_NAME="T",
                        GIT_AUTHOR_EMAIL="t@example.test", GIT_COMMITTER_NAME="T",
                        GIT_COMMITTER_EMAIL="t@example.test")
        self.env.pop("SPECIFY_REPO_ROOT", None)
        # upstream's `init` registers git merge drivers that run `spec-kitty
        # merge-driver-event-log` (and others) from PATH; this CLI does not implement them, so
        # the published CLI must be the `spec-kitty` on PATH for a merge in such a project.
        self.env["PATH"] = os.path.dirname(upstream) + os.pathsep + self.env.get("PATH", "")
        self.steps = 0

    def sh(self, *args, cwd=None):
        subprocess.run(args, cwd=cwd or self.root, env=self.env, check=True,
                       stdout=subprocess.DEVNULL)

    def call(self, who, *args, cwd=None, expect_ok=True):
        self.steps += 1
        out = subprocess.run([self.cli[who], *args], cwd=cwd or self.root, env=self.env,
                             capture_output=True, text=True, timeout=600)
        doc = None
        for line in reversed(out.stdout.strip().splitlines()):
            try:
                doc = json.loads(line)
                break
            except ValueError:
                continue
        ok = out.returncode == 0 and (not isinstance(doc, dict) or doc.get("success", True))
        label = " ".join(a if len(a) < 40 else a[:37] + "..." for a in args)
        print(f"{self.steps:2} {who:8} {'ok ' if ok else 'FAIL'} {label}")
        if ok != expect_ok:
            print(out.stdout[-3000:], out.stderr[-3000:], sep="\n")
            sys.exit(1)
        return doc

    def api(self, who, *args, **kw):
        doc = self.call(who, "orchestrator-api", *args, **kw)
        return doc.get("data", {}) if isinstance(doc, dict) else {}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--upstream", required=True, help="the published CLI's spec-kitty")
    p.add_argument("--ours", default="target/debug/spec-kitty")
    args = p.parse_args()
    ours = os.path.abspath(args.ours)
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "proj")
        os.makedirs(root)
        home = os.path.join(tmp, "home")
        os.makedirs(home)
        r = Run(ours, args.upstream, root, home)
        r.sh("git", "init", "-q", "-b", "main")
        with open(os.path.join(root, "README.md"), "w") as f:
            f.write("demo\n")
        r.sh("git", "add", "-A")
        r.sh("git", "commit", "-qm", "init")
        r.call("upstream", "init", "--ai", "codex", "--non-interactive")
        r.sh("git", "add", "-A")
        r.sh("git", "commit", "-qm", "spec-kitty init")
        r.sh("git", "checkout", "-qb", "feat/cart")
        created = r.call("upstream", "agent", "mission", "create", "cart", "--mission-type",
                         "software-dev", "--friendly-name", "Shopping cart", "--topology",
                         "coord", "--json")
        m = created["mission_slug"]
        mdir = os.path.join(root, "kitty-specs", m)
        with open(os.path.join(mdir, "spec.md"), "w") as f:
            f.write("# Spec\n\nA cart with an API.\n")
        with open(os.path.join(mdir, "tasks.md"), "w") as f:
            f.write("# Tasks\n\n## WP01 Cart model\n\n- [ ] T001 Cart model\n\n"
                    "## WP02 Cart API\n\n- [ ] T002 Cart API\n")
        for wp in (dict(id="WP01", title="Cart model", deps="[]", subtask="T001", file="cart.py"),
                   dict(id="WP02", title="Cart API", deps='["WP01"]', subtask="T002",
                        file="api.py")):
            with open(os.path.join(mdir, "tasks", f"{wp['id']}-{wp['file'][:-3]}.md"), "w") as f:
                f.write(WP.format(**wp))
        r.sh("git", "add", "-A")
        r.sh("git", "commit", "-qm", "spec and work packages")

        r.call("ours", "agent", "mission", "finalize-tasks", "--mission", m, "--json")
        ready = r.api("upstream", "list-ready", "--mission", m)
        assert [w["wp_id"] for w in ready["ready_work_packages"]] == ["WP01"], ready

        def implement(who, wp, subtask, file):
            data = r.api(who, "start-implementation", "--mission", m, "--wp", wp, "--actor",
                         "orch", "--policy", POLICY)
            ws = data["workspace_path"]
            os.makedirs(os.path.join(ws, "src"), exist_ok=True)
            with open(os.path.join(ws, "src", file), "a") as f:
                f.write(f"# {wp}\n")
            r.sh("git", "add", "-A", cwd=ws)
            r.sh("git", "commit", "-qm", f"{wp} work", cwd=ws)
            other = "upstream" if who == "ours" else "ours"
            r.call(other, "agent", "tasks", "mark-status", subtask, "--status", "done",
                   "--mission", m, "--json", cwd=ws)

        def to_review(who, wp, note):
            r.api(who, "transition", "--mission", m, "--wp", wp, "--to", "for_review",
                  "--actor", "orch", "--note", note, "--policy", POLICY)

        def review(who, wp, ref, verdict, decider):
            r.api(who, "start-review", "--mission", m, "--wp", wp, "--actor", "orch",
                  "--policy", POLICY, "--review-ref", ref)
            result = {"reference": ref, "reviewer": "codex", "verdict": verdict}
            if verdict == "approved":
                extra = ["--to", "done", "--evidence-json", json.dumps({"review": result})]
            else:
                extra = ["--to", "in_progress"]
            r.api(decider, "transition", "--mission", m, "--wp", wp, "--actor", "orch",
                  "--note", f"review {verdict}", "--review-ref", ref, "--review-result-json",
                  json.dumps(result), "--policy", POLICY, *extra)

        # Lanes are allocated by this CLI: upstream 3.2.7's own start-implementation fails on
        # a coord mission it finalized itself (LANE_ALLOCATION_FAILED: merging the recorded
        # planning commit into the lane conflicts on status.events.jsonl, which the planning
        # branch and the coordination branch both add). Every other step alternates.
        implement("ours", "WP01", "T001", "cart.py")
        to_review("upstream", "WP01", "implementation complete")
        review("ours", "WP01", "review-WP01-1", "changes_requested", "upstream")
        to_review("ours", "WP01", "rework complete")
        review("upstream", "WP01", "review-WP01-2", "approved", "ours")
        implement("ours", "WP02", "T002", "api.py")
        to_review("upstream", "WP02", "implementation complete")
        review("upstream", "WP02", "review-WP02-1", "approved", "ours")

        states = {who: r.api(who, "mission-state", "--mission", m) for who in ("ours", "upstream")}
        lanes = {who: {w["wp_id"]: w["lane"] for w in s["work_packages"]}
                 for who, s in states.items()}
        print("lanes:", lanes)
        if lanes["ours"] != lanes["upstream"]:
            print("the two CLIs disagree on the lanes")
            sys.exit(1)
        r.api("ours", "accept-mission", "--mission", m, "--actor", "orch")
        r.api("ours", "merge-mission", "--mission", m)
        after = {who: r.api(who, "mission-state", "--mission", m) for who in ("ours", "upstream")}
        print("after merge:", {who: s["summary"] for who, s in after.items()})
        print(f"{r.steps} steps, both CLIs read one state")


if __name__ == "__main__":
    main()
