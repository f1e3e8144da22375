#!/usr/bin/env python3
"""Wall time of `spec-kitty status --mission M --json` on a mission with 1,000 work packages and
100,000 status events (target: under 80 ms on a 2-core machine).

Usage: python3 bench/status_board.py [path/to/spec-kitty]   (default: target/release/spec-kitty)
Builds the fixture in a temporary git repository, runs 3 warm-ups and 15 timed runs, prints the
median and the range.
"""
import json, os, random, statistics, subprocess, sys, tempfile, time

LANES = ["planned", "claimed", "in_progress", "for_review", "in_review", "approved", "done"]
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(n):
    s = "01M8"
    x = n
    tail = []
    for _ in range(22):
        tail.append(CROCKFORD[x % 32])
        x //= 32
    return s + "".join(reversed(tail))


def build(root, wps=1000, events=100_000):
    mission = "001-bench"
    d = os.path.join(root, "kitty-specs", mission)
    os.makedirs(os.path.join(d, "tasks"))
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"mission_slug": mission, "mission_number": 1, "mission_type": "software-dev",
                   "slug": mission, "friendly_name": "bench", "target_branch": "main",
                   "created_at": "2026-11-25T00:00:00.000000+00:00"}, f, indent=2, sort_keys=True)
    for i in range(1, wps + 1):
        deps = [f"WP{i - 1:04d}"] if i > 1 and i % 10 else []
        with open(os.path.join(d, "tasks", f"WP{i:04d}-task-{i}.md"), "w") as f:
            f.write(f"---\nwork_package_id: \"WP{i:04d}\"\ntitle: \"Task {i}\"\nlane: \"planned\"\n"
                    f"dependencies: {json.dumps(deps)}\nsubtasks: []\n---\nBody of task {i}.\n")
    rnd = random.Random(7)
    state = {}
    base = 1_764_000_000_000_000
    with open(os.path.join(d, "status.events.jsonl"), "w") as f:
        for n in range(events):
            wp = f"WP{rnd.randint(1, wps):04d}"
            frm = state.get(wp, "planned")
            to = LANES[(LANES.index(frm) + 1) % len(LANES)]
            state[wp] = to
            micros = base + n * 1000
            at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(micros // 1_000_000)) + f".{micros % 1_000_000:06d}+00:00"
            ev = {"actor": "bench", "at": at, "event_id": ulid(n), "evidence": None, "execution_mode": "worktree",
                  "force": True, "from_lane": frm, "mission_slug": mission, "policy_metadata": None,
                  "reason": "bench", "review_ref": None, "to_lane": to, "wp_id": wp}
            f.write(json.dumps(ev, sort_keys=True) + "\n")
    subprocess.run(["git", "init", "-q", root], check=True)
    return mission


def main():
    exe = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/spec-kitty")
    with tempfile.TemporaryDirectory() as root:
        mission = build(root)
        cmd = [exe, "status", "--mission", mission, "--json"]
        env = dict(os.environ, SPECIFY_REPO_ROOT=root)
        for _ in range(3):
            out = subprocess.run(cmd, cwd=root, env=env, capture_output=True, check=True)
        doc = json.loads(out.stdout)
        assert len(doc["work_packages"]) == 1000 and doc["event_count"] == 100_000, doc.get("event_count")
        times = []
        for _ in range(15):
            t = time.perf_counter()
            subprocess.run(cmd, cwd=root, env=env, capture_output=True, check=True)
            times.append((time.perf_counter() - t) * 1000)
        print(f"spec-kitty status --json, 1000 WPs / 100000 events: median {statistics.median(times):.1f} ms "
              f"(min {min(times):.1f}, max {max(times):.1f}, n={len(times)})")


if __name__ == "__main__":
    main()
