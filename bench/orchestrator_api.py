#!/usr/bin/env python3
"""Median wall time per orchestrator-api call (targets on a 2-core machine: read calls < 5 ms,
start-implementation incl. the git worktree < 80 ms, mission-state on 1,000 WPs / 100,000
events < 100 ms).

Usage: python3 bench/orchestrator_api.py [path/to/spec-kitty]   (default: target/release/spec-kitty)
Builds the orchestrator's e2e fixture (orchestrator-api.md §4.4) and the large mission of
bench/status_board.py in temporary git repositories.
"""
import json, os, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import status_board  # noqa: E402

POLICY = json.dumps({"orchestrator_id": "spec-kitty-orchestrator", "orchestrator_version": "0.1.3", "agent_family": "claude",
                     "approval_mode": "full_auto", "sandbox_mode": "workspace_write", "network_mode": "none",
                     "dangerous_flags": [], "tool_restrictions": None})
M = "099-orchestrator-e2e"


def git(root, *args):
    subprocess.run(["git", "-C", root, "-c", "user.name=B", "-c", "user.email=b@example.test", *args], check=True, capture_output=True)


def fixture(root, exe):
    os.makedirs(os.path.join(root, "kitty-specs", M, "tasks"))
    os.makedirs(os.path.join(root, ".kittify"))
    git(root, "init", "-q", "-b", "main")
    git(root, "checkout", "-q", "-b", "e2e/orchestrator")
    with open(os.path.join(root, ".gitignore"), "w") as f:
        f.write(".worktrees/\n")
    with open(os.path.join(root, "kitty-specs", M, "meta.json"), "w") as f:
        json.dump({"mission_slug": M, "mission_number": 99, "mission_type": "software-dev", "title": "Orchestrator E2E",
                   "target_branch": "e2e/orchestrator"}, f, indent=2)
    with open(os.path.join(root, "kitty-specs", M, "tasks", "WP01-deterministic-implementation.md"), "w") as f:
        f.write('---\nwork_package_id: "WP01"\ntitle: "Deterministic implementation"\nlane: "planned"\ndependencies: []\n'
                'owned_files: ["src/wp01_impl.py"]\nagent: null\n---\nBody\n')
    git(root, "add", "-A")
    git(root, "commit", "-qm", "seed")
    subprocess.run([exe, "agent", "mission", "finalize-tasks", "--mission", M, "--json"], cwd=root, check=True, capture_output=True)


def timed(exe, root, args, runs=21, warm=3, reset=None):
    # Events go to a spec-kitty home inside the fixture, never the user's ~/.spec-kitty.
    env = dict(os.environ, SPECIFY_REPO_ROOT=root, SPEC_KITTY_HOME=os.path.join(root, ".git", "bench-home"))
    cmd = [exe, "orchestrator-api", *args]
    out = subprocess.run(cmd, cwd=root, env=env, capture_output=True)
    assert json.loads(out.stdout)["success"], out.stdout
    times = []
    devnull = os.open(os.devnull, os.O_WRONLY)
    for i in range(warm + runs):
        if reset:
            reset()
        # posix_spawn with stdout to /dev/null: measures the call, not Python's pipe handling.
        os.chdir(root)
        t = time.perf_counter()
        pid = os.posix_spawn(exe, cmd, env, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
        _, status = os.waitpid(pid, 0)
        dt = (time.perf_counter() - t) * 1000
        assert os.waitstatus_to_exitcode(status) == 0, cmd
        if i >= warm:
            times.append(dt)
    os.close(devnull)
    return statistics.median(times), min(times), max(times)


def main():
    exe = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/spec-kitty")
    rows = []
    with tempfile.TemporaryDirectory() as root:
        fixture(root, exe)
        for name, args in [("contract-version", ["contract-version"]),
                           ("mission-state", ["mission-state", "--mission", M]),
                           ("list-ready", ["list-ready", "--mission", M])]:
            rows.append((name + " (e2e fixture)",) + timed(exe, root, args))
        log = os.path.join(root, "kitty-specs", M, "status.events.jsonl")
        seed = open(log).read()

        def reset():
            # Back to planned, with no lane worktree or branches: each run creates them again.
            with open(log, "w") as f:
                f.write(seed)
            subprocess.run(["git", "-C", root, "worktree", "remove", "--force", os.path.join(root, ".worktrees", M + "-lane-a")], capture_output=True)
            subprocess.run(["git", "-C", root, "branch", "-D", f"kitty/mission-{M}-lane-a", f"kitty/mission-{M}"], capture_output=True)

        rows.append(("start-implementation (creates the lane worktree)",) + timed(
            exe, root, ["start-implementation", "--mission", M, "--wp", "WP01", "--actor", "bench", "--policy", POLICY], runs=11, reset=reset))
    with tempfile.TemporaryDirectory() as root:
        big = status_board.build(root)
        rows.append(("mission-state (1000 WPs, 100000 events)",) + timed(exe, root, ["mission-state", "--mission", big], runs=11))
    for name, med, lo, hi in rows:
        print(f"{name:<52} median {med:7.2f} ms  (min {lo:.2f}, max {hi:.2f})")


if __name__ == "__main__":
    main()
