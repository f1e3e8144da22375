#!/usr/bin/env python3
"""Peak memory (max RSS) and wall time of `orchestrator-api mission-state` at 1,000,000 events.

Usage: python3 bench/mission_state_rss.py [path/to/spec-kitty] [--events N]
       (default: target/release/spec-kitty, 1000000)

Builds a mission of 1,000 work packages and N lane events (bench/write_cost.py's generator),
then runs mission-state twice: the first call reduces the whole log (no saved reducer state yet)
and saves it; the second answers from the saved state (the common case: every later call). The
floor for peak memory is the binary at rest (`--version`). Target (issue 20): at most 30 MB.
"""
import os, resource, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import write_cost  # noqa: E402


def measured(cmd, env, cwd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"{cmd} failed: {out.stderr.decode()}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return dt * 1000, after, before


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    events = 1_000_000
    for i, a in enumerate(sys.argv):
        if a == "--events":
            events = int(sys.argv[i + 1])
    exe = os.path.abspath(args[0] if args else "target/release/spec-kitty")
    with tempfile.TemporaryDirectory() as root:
        mission = write_cost.build(root, events, wps=1000)
        env = dict(os.environ, SPECIFY_REPO_ROOT=root, SPEC_KITTY_HOME=os.path.join(root, ".git", "bench-home"))
        # RUSAGE_CHILDREN's maxrss is the largest child so far: measure the smallest first.
        _, rest, _ = measured([exe, "--version"], env, root)
        cmd = [exe, "orchestrator-api", "mission-state", "--mission", mission]
        # Run the warm case in a fresh Python child so its peak is not hidden by the cold one.
        cold_ms, cold_rss, _ = measured(cmd, env, root)
        probe = subprocess.run([sys.executable, "-c", (
            "import resource,subprocess,sys,time;t=time.perf_counter();"
            "subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,check=True);"
            "print((time.perf_counter()-t)*1000, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"), *cmd],
            env=env, cwd=root, capture_output=True, text=True, check=True)
        warm_ms, warm_rss = probe.stdout.split()
        print(f"mission-state at {events:,} events, 1,000 WPs: first call (whole log) {cold_ms:.0f} ms, "
              f"peak {cold_rss / 1024:.1f} MB; later calls {float(warm_ms):.1f} ms, peak {int(warm_rss) / 1024:.1f} MB; "
              f"floor (binary at rest) {rest / 1024:.1f} MB")


if __name__ == "__main__":
    main()
