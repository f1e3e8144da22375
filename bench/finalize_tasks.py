#!/usr/bin/env python3
"""Wall time of `agent mission finalize-tasks` on a mission with 2,500 work packages.

Usage: python3 bench/finalize_tasks.py [path/to/spec-kitty] [--wps N]   (default: target/release/spec-kitty, 2500)

Creates a project (`spec-kitty init`) and a mission (`agent mission create`) in a temporary git
repository, writes N `tasks/WPnnnn-*.md` files, commits them, and times one finalize-tasks
(which validates every file, writes lanes.json and the frontmatter, bootstraps every WP into
`planned` in the status log, queues the events and commits). The floor printed beside it is
measured on a copy: one process spawn, the atomic replacement of the N files (temp file and
rename each, then one sync), `git add` and `git commit` of them: what any finalize that rewrites
and commits its files must pay. Target (issue 20): at most 1 s for 2,500 WPs.
"""
import os, shutil, subprocess, sys, tempfile, time


def run(cmd, cwd, env):
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"{cmd} failed: {out.stderr or out.stdout}")
    return dt, out.stdout


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    wps = 2500
    for i, a in enumerate(sys.argv):
        if a == "--wps":
            wps = int(sys.argv[i + 1])
    exe = os.path.abspath(args[0] if args else "target/release/spec-kitty")
    with tempfile.TemporaryDirectory() as scratch:
        root = os.path.join(scratch, "p")
        env = dict(os.environ, SPEC_KITTY_HOME=os.path.join(scratch, "home"), GIT_AUTHOR_NAME="B",
                   GIT_AUTHOR_EMAIL="b@example.test", GIT_COMMITTER_NAME="B", GIT_COMMITTER_EMAIL="b@example.test")
        os.makedirs(root)
        run([exe, "init", root, "--json"], scratch, env)
        _, out = run([exe, "agent", "mission", "create", "bench", "--json"], root, env)
        mission = next(d for d in os.listdir(os.path.join(root, "kitty-specs")))
        tasks = os.path.join(root, "kitty-specs", mission, "tasks")
        os.makedirs(tasks, exist_ok=True)
        for i in range(1, wps + 1):
            deps = [f"WP{i - 1:04d}"] if i > 1 and i % 10 else []
            with open(os.path.join(tasks, f"WP{i:04d}-task-{i}.md"), "w") as f:
                f.write(f"---\nwork_package_id: \"WP{i:04d}\"\ntitle: \"Task {i}\"\nlane: \"planned\"\n"
                        f"dependencies: {deps!r}\nsubtasks: []\n---\n# Task {i}\n\nBody.\n".replace("'", '"'))
        run(["git", "add", "-A"], root, env)
        run(["git", "commit", "-qm", "tasks"], root, env)
        copy = os.path.join(scratch, "copy")
        shutil.copytree(root, copy, symlinks=True)
        spawn, _ = run([exe, "--version"], root, env)
        # The floor: what any finalize that rewrites every WP file atomically and commits them
        # must pay here: one atomic replacement per file (write a temp file, rename it over the
        # old one; the renames are most of it on ext4), then git add and git commit of them.
        t = time.perf_counter()
        copy_tasks = os.path.join(copy, "kitty-specs", mission, "tasks")
        for i in range(1, wps + 1):
            path = os.path.join(copy_tasks, f"WP{i:04d}-task-{i}.md")
            with open(path) as f:
                text = f.read()
            with open(path + ".tmp", "w") as f:
                f.write(text + "\n")
            os.rename(path + ".tmp", path)
        os.sync()
        replace = time.perf_counter() - t
        add, _ = run(["git", "add", "--", copy_tasks], copy, env)
        commit, _ = run(["git", "commit", "-qm", "floor"], copy, env)
        took, _ = run([exe, "agent", "mission", "finalize-tasks", "--mission", mission, "--json"], root, env)
        floor = spawn + replace + add + commit
        print(f"finalize-tasks on {wps} WPs: {took * 1000:.0f} ms; floor {floor * 1000:.0f} ms (spawn {spawn * 1000:.1f} "
              f"ms + {wps} atomic replacements {replace * 1000:.0f} ms + git add {add * 1000:.0f} ms + git commit "
              f"{commit * 1000:.0f} ms); {took / floor:.1f}x floor; target <= 1000 ms")


if __name__ == "__main__":
    main()
