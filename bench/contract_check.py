#!/usr/bin/env python3
"""`contract check` is linear in its input: wall time for 5k, 10k, 20k and 40k JSON Lines documents.

Usage: python3 bench/contract_check.py [path/to/spec-kitty]   (default: target/release/spec-kitty)

Each size is a file of N envelope-surface documents (each one refused: a missing field, so every
document is gated and reported). Printed per size: the wall time, the time per document, and the
floor beside it: one process spawn (`spec-kitty --version`) and reading the file from the page
cache (`cat FILE > /dev/null`). Linear means the per-document time stays flat as N doubles
(before the fix, line numbers were counted from the start of the file for every document: 20k
documents took 8.6 s).
"""
import os, subprocess, sys, tempfile, time


def wall(cmd, **kw):
    best = None
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, **kw)
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    return best


def main():
    exe = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/spec-kitty")
    spawn = wall([exe, "--version"])
    print(f"floor: process spawn {spawn * 1000:.1f} ms")
    with tempfile.TemporaryDirectory() as d:
        for n in (5_000, 10_000, 20_000, 40_000):
            path = os.path.join(d, f"docs{n}.jsonl")
            with open(path, "w") as f:
                for i in range(n):
                    f.write('{"event_id": "%026d", "event_type": "WPStatusChanged"}\n' % i)
            cat = wall(["cat", path])
            t = wall([exe, "contract", "check", "--json", path])
            print(f"{n:>6} documents: {t * 1000:8.1f} ms  ({(t - spawn) / n * 1e6:6.2f} us/document; "
                  f"floor: spawn {spawn * 1000:.1f} ms + page-cache read {cat * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
