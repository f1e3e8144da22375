#!/usr/bin/env python3
"""Wall time of `spec-kitty sync status --json` at 2,000 and 200,000 queued events.

Usage: python3 bench/sync_status.py [path/to/spec-kitty]   (default: target/release/spec-kitty)

Builds each queue with Python's sqlite3 (upstream's `queue` table and valid 3.0.0 envelopes, as
the Python CLI leaves them), runs `sync status` once (it migrates the file and judges every row:
the cost of the first look), then 3 warm-ups and 21 timed runs (posix_spawn, stdout to
/dev/null), and prints the median against the floor: spawning the binary (`--version`). The
target (issue 20) is at most 20 ms at 200,000 rows; `--rejudge` (every row judged again) is
timed too, for comparison.
"""
import json, os, sqlite3, statistics, sys, tempfile, time

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(k):
    tail = []
    for _ in range(16):
        tail.append(CROCKFORD[k % 32])
        k //= 32
    return "01J0000000" + "".join(reversed(tail))


def build(path, n):
    c = sqlite3.connect(path)
    c.executescript("""CREATE TABLE IF NOT EXISTS queue (id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT UNIQUE NOT NULL, event_type TEXT NOT NULL, data TEXT NOT NULL,
        timestamp INTEGER NOT NULL, retry_count INTEGER DEFAULT 0, coalesce_key TEXT);""")
    rows = []
    for i in range(n):
        eid = ulid(i)
        env = {"event_id": eid, "event_type": "WPCreated", "aggregate_id": "WP01", "aggregate_type": "WorkPackage",
               "schema_version": "3.0.0", "build_id": "b", "node_id": "n", "lamport_clock": i + 1,
               "causation_id": None, "correlation_id": eid, "data_tier": 0,
               "timestamp": "2026-04-06T12:00:00.123456+00:00", "team_slug": "local",
               "project_uuid": "550e8400-e29b-41d4-a716-446655440000", "project_slug": "p", "git_branch": None,
               "head_commit_sha": None, "repo_slug": None,
               "payload": {"wp_id": "WP01", "title": "t", "dependencies": [], "mission_slug": "001-x"}}
        rows.append((eid, "WPCreated", json.dumps(env), 1_700_000_000 + i))
    c.executemany("INSERT INTO queue (event_id, event_type, data, timestamp) VALUES (?,?,?,?)", rows)
    c.commit()
    c.close()


def spawn_ms(exe, argv, env):
    devnull = os.open(os.devnull, os.O_WRONLY)
    t = time.perf_counter()
    pid = os.posix_spawn(exe, argv, env, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)])
    _, status = os.waitpid(pid, 0)
    dt = (time.perf_counter() - t) * 1000
    os.close(devnull)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv} failed")
    return dt


def median_of(f, runs=21, warm=3):
    times = [f() for _ in range(warm + runs)][warm:]
    return statistics.median(times), min(times), max(times)


def main():
    exe = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/spec-kitty")
    with tempfile.TemporaryDirectory() as scratch:
        floor = median_of(lambda: spawn_ms(exe, [exe, "--version"], dict(os.environ)))[0]
        print(f"floor: spawn {floor:.2f} ms")
        for n in (2_000, 200_000):
            home = os.path.join(scratch, f"h{n}")
            os.makedirs(home)
            build(os.path.join(home, "queue.db"), n)
            env = dict(os.environ, SPEC_KITTY_HOME=home)
            first = spawn_ms(exe, [exe, "sync", "status", "--json"], env)
            med, lo, hi = median_of(lambda: spawn_ms(exe, [exe, "sync", "status", "--json"], env))
            rej = median_of(lambda: spawn_ms(exe, [exe, "sync", "status", "--json", "--rejudge"], env), runs=5, warm=1)[0]
            print(f"sync status at {n:>7,} rows: median {med:6.2f} ms (min {lo:.2f}, max {hi:.2f}) = "
                  f"{med / floor:4.1f}x spawn; first look {first:.0f} ms; --rejudge {rej:.0f} ms")


if __name__ == "__main__":
    main()
