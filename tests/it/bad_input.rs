//! The bad-input corpus: committed and user-edited files (meta.json, lanes.json, the status
//! log, WP files, tasks.md, config.yaml, the spec-kitty home) broken in every way we know of,
//! each run through the commands that read them. Per run (each in its own copy of a finalized
//! repository, its own home and an `outside/` directory the links point into):
//!
//! - no panic (exit 101, "panicked"), no hang (a run is killed after a generous bound);
//! - `orchestrator-api` prints exactly one JSON line;
//! - a failed command changes no byte of the repository (work tree, refs, HEAD) or the home;
//! - nothing is written outside the repository and the home (`outside/` unchanged, nothing new
//!   next to the repository);
//! - a failure's message names the file or argument and says what to do;
//! - human output carries no terminal control sequence and no secret.
//!
//! The counts are printed; the test fails listing every defect.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::support::{MISSION, fixture, git};

const POLICY: &str = r#"{"orchestrator_id": "spec-kitty-orchestrator", "orchestrator_version": "0.1.3", "agent_family": "claude", "approval_mode": "full_auto", "sandbox_mode": "workspace_write", "network_mode": "none", "dangerous_flags": [], "tool_restrictions": null}"#;
/// A run that takes longer is a hang (killed and counted).
const HANG_BOUND: Duration = Duration::from_secs(60);
/// Words of a remedy: what the user can do.
const REMEDIES: &[&str] = &[
    "run ", "restore", "use ", "pass ", "fix ", "delete", "remove", "set ", "re-save", "replace",
    "rename", "expected", "must ", "check ", "e.g.", "create", "add ", "choose", "log in",
    "shorten", "split", "flatten", "try ", "edit ", "move ", "give ",
];
const SECRET: &str = "hunter2";
/// orchestrator-api messages whose wording is upstream's (host contract 1.3.0).
const UPSTREAM_TEXTS: &[&str] = &[
    "\"message\": \"No such option: ",
    "\"message\": \"No such command '",
    "not found in kitty-specs/\"",
    "\"message\": \"Work package '",
];

type Setup = Box<dyn Fn(&Path) + Send + Sync>;
type Edit = fn(&mut serde_json::Value);
/// name, names the message must mention, argv, env, setup of the home.
type HomeCase = (
    &'static str,
    &'static [&'static str],
    Vec<&'static str>,
    Vec<(&'static str, &'static str)>,
    Setup,
);

struct Case {
    name: String,
    setup: std::sync::Arc<Setup>,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Vec<u8>,
    /// The failure message must contain one of these (the file or argument).
    names: Vec<String>,
}

fn mdir(root: &Path) -> PathBuf {
    root.join("kitty-specs").join(MISSION)
}

fn write(p: &Path, bytes: impl AsRef<[u8]>) {
    if p.is_dir() && !p.is_symlink() {
        std::fs::remove_dir_all(p).unwrap();
    } else {
        let _ = std::fs::remove_file(p);
    }
    std::fs::write(p, bytes).unwrap();
}

fn replace_with(p: &Path, kind: &str) {
    if p.is_dir() && !p.is_symlink() {
        std::fs::remove_dir_all(p).unwrap();
    } else {
        let _ = std::fs::remove_file(p);
    }
    let outside = p
        .ancestors()
        .find(|a| a.join("outside").is_dir())
        .unwrap()
        .join("outside");
    match kind {
        "link-out" => std::os::unix::fs::symlink(outside.join("victim.txt"), p).unwrap(),
        "link-zero" => std::os::unix::fs::symlink("/dev/zero", p).unwrap(),
        "link-git" => {
            let git_dir = p.ancestors().find(|a| a.join(".git").is_dir()).unwrap();
            std::os::unix::fs::symlink(git_dir.join(".git/HEAD"), p).unwrap()
        }
        "fifo" => {
            assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
        }
        "dir" => std::fs::create_dir_all(p.join("x")).unwrap(),
        "big" => std::fs::write(p, vec![b' '; 9 * 1024 * 1024]).unwrap(),
        other => panic!("unknown kind {other}"),
    }
}

const KINDS: &[&str] = &["link-out", "link-zero", "link-git", "fifo", "dir", "big"];

fn edit_json(p: &Path, f: impl Fn(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    f(&mut v);
    write(p, serde_json::to_string_pretty(&v).unwrap());
}

fn s(v: &str) -> String {
    v.to_owned()
}

/// The mission commands each mission-file mutation is run through.
fn mission_commands() -> Vec<Vec<String>> {
    let api = |rest: &[&str]| {
        let mut v = vec![s("orchestrator-api")];
        v.extend(rest.iter().map(|x| s(x)));
        v
    };
    vec![
        vec![s("status"), s("--mission"), s(MISSION)],
        vec![s("status"), s("--mission"), s(MISSION), s("--json")],
        vec![
            s("agent"),
            s("tasks"),
            s("mark-status"),
            s("T001"),
            s("--status"),
            s("done"),
            s("--mission"),
            s(MISSION),
        ],
        vec![
            s("agent"),
            s("mission"),
            s("finalize-tasks"),
            s("--mission"),
            s(MISSION),
        ],
        api(&["mission-state", "--mission", MISSION]),
        api(&["list-ready", "--mission", MISSION]),
        api(&[
            "start-implementation",
            "--mission",
            MISSION,
            "--wp",
            "WP01",
            "--actor",
            "bot",
            "--policy",
            POLICY,
        ]),
        vec![s("upgrade"), s("--dry-run")],
    ]
}

fn add(cases: &mut Vec<Case>, name: &str, names: &[&str], setup: Setup) {
    let setup = std::sync::Arc::new(setup);
    for argv in mission_commands() {
        cases.push(Case {
            name: format!("{name} | {}", argv[..argv.len().min(3)].join(" ")),
            setup: setup.clone(),
            argv,
            env: Vec::new(),
            stdin: Vec::new(),
            names: names.iter().map(|n| s(n)).collect(),
        });
    }
}

fn one(cases: &mut Vec<Case>, name: &str, names: &[&str], argv: &[&str], setup: Setup) {
    cases.push(Case {
        name: name.to_owned(),
        setup: std::sync::Arc::new(setup),
        argv: argv.iter().map(|x| s(x)).collect(),
        env: Vec::new(),
        stdin: Vec::new(),
        names: names.iter().map(|n| s(n)).collect(),
    });
}

fn corpus() -> Vec<Case> {
    let mut c = Vec::new();
    let legacy_key = ["feature", "slug"].join("_");

    // meta.json
    for kind in KINDS {
        let kind = *kind;
        add(
            &mut c,
            &format!("meta.json {kind}"),
            &["meta.json"],
            Box::new(move |r| replace_with(&mdir(r).join("meta.json"), kind)),
        );
    }
    let meta_texts: Vec<(&str, Vec<u8>)> = vec![
        ("meta.json invalid", b"{\"mission_slug\": ".to_vec()),
        ("meta.json empty", Vec::new()),
        ("meta.json array", b"[]".to_vec()),
        ("meta.json deep", "[".repeat(80_000).into_bytes()),
        ("meta.json not utf8", b"{\"title\": \"\xff\xfe\"}".to_vec()),
        ("meta.json null", b"null".to_vec()),
    ];
    for (name, bytes) in meta_texts {
        add(
            &mut c,
            name,
            &["meta.json"],
            Box::new(move |r| write(&mdir(r).join("meta.json"), &bytes)),
        );
    }
    let meta_edits: Vec<(&str, serde_json::Value)> = vec![
        ("mission_slug", serde_json::json!("../../escaped")),
        ("mission_slug", serde_json::json!("-D")),
        ("mission_slug", serde_json::json!(42)),
        ("target_branch", serde_json::json!("-D")),
        ("target_branch", serde_json::json!("--orphan=x")),
        ("target_branch", serde_json::json!("a..b")),
        ("target_branch", serde_json::json!("victim")),
        ("merge_target_branch", serde_json::json!("--orphan=x")),
        ("coordination_branch", serde_json::json!("-D")),
        ("mid8", serde_json::json!("../../xy")),
        ("mission_number", serde_json::json!("abc")),
        ("mission_id", serde_json::json!("../../x")),
        (
            "title",
            serde_json::json!("\u{1b}]0;pwned\u{7}\u{1b}[2J title"),
        ),
        (
            legacy_key.as_str(),
            serde_json::json!("099-orchestrator-e2e"),
        ),
    ];
    for (key, value) in meta_edits {
        let key = key.to_owned();
        let label = format!("meta.json {key}={value}");
        let names = ["meta.json".to_owned(), key.clone()];
        add(
            &mut c,
            &label,
            &[names[0].as_str(), names[1].as_str()],
            Box::new(move |r| {
                let (key, value) = (key.clone(), value.clone());
                edit_json(&mdir(r).join("meta.json"), move |v| {
                    v[key.as_str()] = value.clone();
                })
            }),
        );
    }

    // lanes.json
    for kind in KINDS {
        let kind = *kind;
        add(
            &mut c,
            &format!("lanes.json {kind}"),
            &["lanes.json"],
            Box::new(move |r| replace_with(&mdir(r).join("lanes.json"), kind)),
        );
    }
    for (name, bytes) in [
        ("lanes.json invalid", b"{".to_vec()),
        ("lanes.json deep", "{\"a\":".repeat(80_000).into_bytes()),
        ("lanes.json wrong shape", b"{\"lanes\": 3}".to_vec()),
    ] {
        add(
            &mut c,
            name,
            &["lanes.json"],
            Box::new(move |r| write(&mdir(r).join("lanes.json"), &bytes)),
        );
    }
    let lane_edits: Vec<(&str, Edit)> = vec![
        ("mission_branch=-D target=victim", |v| {
            v["mission_branch"] = "-D".into();
            v["target_branch"] = "victim".into();
        }),
        ("mission_branch=--force", |v| {
            v["mission_branch"] = "--force".into()
        }),
        ("mission_branch with space", |v| {
            v["mission_branch"] = "a b".into()
        }),
        ("target_branch=-D", |v| v["target_branch"] = "-D".into()),
        ("mission_slug=../../escaped", |v| {
            v["mission_slug"] = "../../escaped".into()
        }),
        ("mission_slug=/tmp/abs", |v| {
            v["mission_slug"] = "/tmp/abs".into()
        }),
        ("lane_id=../../x", |v| {
            v["lanes"][0]["lane_id"] = "../../x".into()
        }),
        ("lane_id=-f", |v| v["lanes"][0]["lane_id"] = "-f".into()),
        ("wp_ids=../x", |v| {
            v["lanes"][0]["wp_ids"][0] = "../x".into()
        }),
        ("depends_on_lanes=--all", |v| {
            v["lanes"][1]["depends_on_lanes"] = serde_json::json!(["--all"])
        }),
    ];
    for (name, f) in lane_edits {
        add(
            &mut c,
            &format!("lanes.json {name}"),
            &["lanes.json"],
            Box::new(move |r| edit_json(&mdir(r).join("lanes.json"), f)),
        );
    }

    // status.events.jsonl
    // The log has no size bound (a million events is a supported size): no "big" case.
    for kind in KINDS.iter().filter(|k| **k != "big") {
        let kind = *kind;
        add(
            &mut c,
            &format!("status log {kind}"),
            &["status.events.jsonl"],
            Box::new(move |r| replace_with(&mdir(r).join("status.events.jsonl"), kind)),
        );
    }
    for (name, tail) in [
        ("status log malformed line", b"{not json}\n".to_vec()),
        ("status log torn tail", b"{\"event_id\": \"01J".to_vec()),
        ("status log deep line", format!("{}\n", "[".repeat(80_000)).into_bytes()),
        ("status log not utf8", b"\xff\xfe\n".to_vec()),
        ("status log unknown lane", b"{\"event_id\":\"01JZZZZZZZZZZZZZZZZZZZZZZZ\",\"wp_id\":\"WP01\",\"from_lane\":\"planned\",\"to_lane\":\"nowhere\"}\n".to_vec()),
    ] {
        add(&mut c, name, &["status.events.jsonl"], Box::new(move |r| {
            let p = mdir(r).join("status.events.jsonl");
            let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
            f.write_all(&tail).unwrap();
        }));
    }

    // WP files and tasks.md
    let wp = "tasks/WP01-deterministic-implementation.md";
    for kind in KINDS {
        let kind = *kind;
        add(
            &mut c,
            &format!("WP file {kind}"),
            &["WP01"],
            Box::new(move |r| replace_with(&mdir(r).join(wp), kind)),
        );
    }
    let wp_texts: Vec<(&str, String)> = vec![
        ("no frontmatter", "Build it.\n".into()),
        ("invalid yaml", "---\ntitle: [\n---\n".into()),
        (
            "deep flow yaml",
            format!("---\ntitle: {}\n---\n", "[".repeat(80_000)),
        ),
        (
            "deep block yaml",
            format!("---\ntitle:\n{}x\n---\n", "- ".repeat(20_000)),
        ),
        ("wrong id", super::support::wp_file("WP07", "x", "[]")),
        (
            "bad dependency",
            super::support::wp_file("WP01", "x", "[\"../WP02\"]"),
        ),
        ("cycle", super::support::wp_file("WP01", "x", "[\"WP02\"]")),
        (
            "escape title",
            super::support::wp_file("WP01", "\\e]0;pwned\\a\\e[31mred", "[]"),
        ),
        (
            "not utf8",
            "---\ntitle: \"\u{fffd}\"\n---\n".replace('\u{fffd}', "\u{80}"),
        ),
        (
            "yaml anchors bomb",
            "---\na: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n---\n"
                .to_owned(),
        ),
    ];
    for (name, text) in wp_texts {
        add(
            &mut c,
            &format!("WP file {name}"),
            &["WP01", "WP02", "WP07"],
            Box::new(move |r| write(&mdir(r).join(wp), &text)),
        );
    }
    for kind in KINDS {
        let kind = *kind;
        add(
            &mut c,
            &format!("tasks.md {kind}"),
            &["tasks.md", "T001"],
            Box::new(move |r| replace_with(&mdir(r).join("tasks.md"), kind)),
        );
    }

    // The other files `spec-kitty upgrade` reads: status.json, .kittify/metadata.yaml and a
    // dossier snapshot, each in every bad kind.
    type PathOf = fn(&Path) -> PathBuf;
    let upgrade_files: [(&str, PathOf, &str); 3] = [
        (
            "status.json",
            |r| mdir(r).join("status.json"),
            "status.json",
        ),
        (
            "metadata.yaml",
            |r| r.join(".kittify/metadata.yaml"),
            "metadata.yaml",
        ),
        (
            "dossier snapshot",
            |r| {
                let d = r.join(".kittify/dossiers").join(MISSION);
                std::fs::create_dir_all(&d).unwrap();
                d.join("snapshot-latest.json")
            },
            "snapshot-latest.json",
        ),
    ];
    for (label, path, file) in upgrade_files {
        for kind in KINDS {
            for argv in [&["upgrade", "--dry-run"][..], &["upgrade"][..]] {
                one(
                    &mut c,
                    &format!("{label} {kind} | {}", argv.join(" ")),
                    &[file],
                    argv,
                    Box::new(move |r| replace_with(&path(r), kind)),
                );
            }
        }
    }

    // The mission directory and kitty-specs as links out of the repository.
    add(
        &mut c,
        "mission dir link-out",
        &[MISSION, "kitty-specs"],
        Box::new(|r| {
            let out = r.parent().unwrap().join("outside").join(MISSION);
            copy_tree(&mdir(r), &out);
            std::fs::remove_dir_all(mdir(r)).unwrap();
            std::os::unix::fs::symlink(&out, mdir(r)).unwrap();
        }),
    );
    add(
        &mut c,
        "kitty-specs link-out",
        &[MISSION, "kitty-specs"],
        Box::new(|r| {
            let out = r.parent().unwrap().join("outside").join("specs");
            copy_tree(&r.join("kitty-specs"), &out);
            std::fs::remove_dir_all(r.join("kitty-specs")).unwrap();
            std::os::unix::fs::symlink(&out, r.join("kitty-specs")).unwrap();
        }),
    );

    // config.yaml: init, mission create, status.
    let create = ["agent", "mission", "create", "new-thing", "--json"];
    let config_cmds: [&[&str]; 3] = [
        &["init", "."],
        &create,
        &["agent", "mission", "finalize-tasks", "--mission", MISSION],
    ];
    let mut config_setups: Vec<(String, Setup)> = KINDS
        .iter()
        .map(|k| {
            let k = *k;
            (
                format!("config.yaml {k}"),
                Box::new(move |r: &Path| replace_with(&r.join(".kittify/config.yaml"), k)) as Setup,
            )
        })
        .collect();
    for (name, text) in [
        ("invalid", "project: [\n".to_owned()),
        ("deep flow", format!("project: {}\n", "{a: ".repeat(80_000))),
        (
            "deep block",
            format!("project:\n{}x\n", "- ".repeat(20_000)),
        ),
        ("project scalar", "project: 3\n".to_owned()),
        ("uuid wrong", "project:\n  uuid: -D\n".to_owned()),
    ] {
        config_setups.push((
            format!("config.yaml {name}"),
            Box::new(move |r: &Path| write(&r.join(".kittify/config.yaml"), &text)),
        ));
    }
    for (name, setup) in config_setups {
        let setup = std::sync::Arc::new(setup);
        for argv in config_cmds {
            c.push(Case {
                name: format!("{name} | {}", argv[..3.min(argv.len())].join(" ")),
                setup: setup.clone(),
                argv: argv.iter().map(|x| s(x)).collect(),
                env: Vec::new(),
                stdin: Vec::new(),
                names: vec![s("config.yaml")],
            });
        }
    }

    // Arguments.
    for handle in [
        "../../etc",
        "-D",
        "",
        "a/b",
        ".git",
        "kitty-specs/../x",
        "\u{1b}[2J",
    ] {
        one(
            &mut c,
            &format!("--mission {handle:?} status"),
            &["mission", handle],
            &["status", "--mission", handle],
            Box::new(|_| {}),
        );
        one(
            &mut c,
            &format!("--mission {handle:?} api"),
            &["mission", handle],
            &["orchestrator-api", "mission-state", "--mission", handle],
            Box::new(|_| {}),
        );
        one(
            &mut c,
            &format!("--mission {handle:?} finalize"),
            &["mission", handle],
            &["agent", "mission", "finalize-tasks", "--mission", handle],
            Box::new(|_| {}),
        );
    }
    for wp_id in ["../WP01", "-D", "WP", "WP1x", "WP99"] {
        one(
            &mut c,
            &format!("--wp {wp_id:?}"),
            &["WP", wp_id],
            &[
                "orchestrator-api",
                "start-implementation",
                "--mission",
                MISSION,
                "--wp",
                wp_id,
                "--actor",
                "a",
                "--policy",
                POLICY,
            ],
            Box::new(|_| {}),
        );
    }
    for slug in ["../../escaped", "-D", "a/b", "UPPER", "", "x\u{1b}[2J"] {
        one(
            &mut c,
            &format!("create {slug:?}"),
            &["slug", slug],
            &["agent", "mission", "create", slug],
            Box::new(|_| {}),
        );
    }
    for target in ["-D", "a..b", "--orphan", "victim:x"] {
        one(
            &mut c,
            &format!("merge --target {target}"),
            &["target", target],
            &[
                "orchestrator-api",
                "merge-mission",
                "--mission",
                MISSION,
                "--target",
                target,
            ],
            Box::new(|_| {}),
        );
    }

    // contract check.
    let check = |c: &mut Vec<Case>, name: &str, arg: &str, setup: Setup| {
        one(
            c,
            &format!("contract check {name}"),
            &[arg],
            &["contract", "check", arg],
            setup,
        );
    };
    check(
        &mut c,
        "deep",
        "deep.json",
        Box::new(|r| write(&r.join("deep.json"), "[".repeat(80_000))),
    );
    check(&mut c, "dev zero", "/dev/zero", Box::new(|_| {}));
    check(
        &mut c,
        "fifo",
        "f.fifo",
        Box::new(|r| replace_with(&r.join("f.fifo"), "fifo")),
    );
    check(&mut c, "dir", "kitty-specs", Box::new(|_| {}));
    check(&mut c, "missing", "missing.json", Box::new(|_| {}));
    check(
        &mut c,
        "not utf8",
        "b.json",
        Box::new(|r| write(&r.join("b.json"), b"\xff\xff")),
    );
    check(
        &mut c,
        "empty",
        "e.json",
        Box::new(|r| write(&r.join("e.json"), b"")),
    );
    check(
        &mut c,
        "escape",
        "x.json",
        Box::new(|r| write(&r.join("x.json"), "{\"\u{1b}[2J\": 1}\n")),
    );
    check(
        &mut c,
        "many",
        "many.jsonl",
        Box::new(|r| write(&r.join("many.jsonl"), "{\"a\": 1}\n".repeat(20_000))),
    );

    // The home: queue, credentials, config.toml.
    let home_cases: Vec<HomeCase> = vec![
        (
            "queue garbage",
            &["queue"],
            vec!["sync", "status"],
            vec![],
            Box::new(|h| {
                write(
                    &h.join(".spec-kitty/queue.db"),
                    b"not sqlite at all, not at all",
                );
            }),
        ),
        (
            "credentials garbage",
            &["credentials"],
            vec!["auth", "status"],
            vec![],
            Box::new(|h| {
                write(&h.join(".spec-kitty/credentials"), b"[[[");
            }),
        ),
        (
            "credentials garbage sync",
            &["credentials"],
            vec!["sync", "status"],
            vec![],
            Box::new(|h| {
                write(&h.join(".spec-kitty/credentials"), b"[[[");
            }),
        ),
        (
            "config.toml user:pass",
            &["server", "URL"],
            vec!["sync", "status"],
            vec![("SPEC_KITTY_ENABLE_SAAS_SYNC", "1")],
            Box::new(|h| {
                write(
                    &h.join(".spec-kitty/config.toml"),
                    format!("[sync]\nserver_url = \"https://bob:{SECRET}@sync.example.com\"\n"),
                );
            }),
        ),
        (
            "config.toml user:pass json",
            &["server", "URL"],
            vec!["sync", "status", "--json"],
            vec![("SPEC_KITTY_ENABLE_SAAS_SYNC", "1")],
            Box::new(|h| {
                write(
                    &h.join(".spec-kitty/config.toml"),
                    format!("[sync]\nserver_url = \"https://bob:{SECRET}@sync.example.com\"\n"),
                );
            }),
        ),
        (
            "config.toml user:pass now",
            &["server", "URL"],
            vec!["sync", "now"],
            vec![("SPEC_KITTY_ENABLE_SAAS_SYNC", "1")],
            Box::new(|h| {
                write(
                    &h.join(".spec-kitty/config.toml"),
                    format!("[sync]\nserver_url = \"https://bob:{SECRET}@sync.example.com\"\n"),
                );
            }),
        ),
        (
            "config.toml user:pass login",
            &["server", "URL"],
            vec!["auth", "login", "--username", "u", "--password-stdin"],
            vec![("SPEC_KITTY_ENABLE_SAAS_SYNC", "1")],
            Box::new(|h| {
                write(
                    &h.join(".spec-kitty/config.toml"),
                    format!("[sync]\nserver_url = \"https://bob:{SECRET}@sync.example.com\"\n"),
                );
            }),
        ),
        (
            "config.toml malformed url",
            &["server", "URL"],
            vec!["sync", "status"],
            vec![("SPEC_KITTY_ENABLE_SAAS_SYNC", "1")],
            Box::new(|h| {
                write(
                    &h.join(".spec-kitty/config.toml"),
                    format!("[sync]\nserver_url = \"ht tp://bob:{SECRET}@x\"\n"),
                );
            }),
        ),
        (
            "config.toml garbage",
            &["config.toml"],
            vec!["sync", "status"],
            vec![],
            Box::new(|h| {
                write(&h.join(".spec-kitty/config.toml"), b"[[[[");
            }),
        ),
    ];
    let mut home_cases = home_cases;
    // The home and the files in it as links out (the home is refused, in one place).
    let mark = vec![
        "agent",
        "tasks",
        "mark-status",
        "T001",
        "--status",
        "done",
        "--mission",
        MISSION,
    ];
    for (entry, names) in [
        ("", &[".spec-kitty"][..]),
        ("queue.db", &["queue.db"][..]),
        ("credentials", &["credentials"][..]),
        ("clock.json", &["clock.json"][..]),
    ] {
        for argv in [vec!["sync", "status"], vec!["auth", "status"], mark.clone()] {
            home_cases.push((
                Box::leak(format!("link {entry:?} | {}", argv.join(" ")).into_boxed_str()),
                names,
                argv,
                vec![],
                Box::new(move |h: &Path| {
                    if entry.is_empty() {
                        // The whole home: a link to a directory outside.
                        let home = h.join(".spec-kitty");
                        std::fs::remove_dir_all(&home).unwrap();
                        std::os::unix::fs::symlink(h.parent().unwrap().join("outside"), home)
                            .unwrap();
                    } else {
                        replace_with(&h.join(".spec-kitty").join(entry), "link-out");
                    }
                }),
            ));
        }
    }
    // Files of the home that are not regular files (a FIFO blocks a plain read forever).
    let special: [(&str, &'static [&'static str], &str); 7] = [
        ("config.toml", &["config.toml"], "fifo"),
        ("credentials", &["credentials"], "fifo"),
        ("clock.json", &["clock.json"], "fifo"),
        ("active_queue_scope", &["active_queue_scope"], "fifo"),
        ("queue.db", &["queue.db"], "fifo"),
        ("config.toml", &["config.toml"], "dir"),
        ("credentials", &["credentials"], "big"),
    ];
    for (entry, names, kind) in special {
        for argv in [vec!["sync", "status"], vec!["auth", "status"], mark.clone()] {
            home_cases.push((
                Box::leak(format!("{entry} {kind} | {}", argv.join(" ")).into_boxed_str()),
                names,
                argv,
                vec![],
                Box::new(move |h: &Path| replace_with(&h.join(".spec-kitty").join(entry), kind)),
            ));
        }
    }
    for (name, names, argv, env, setup) in home_cases {
        c.push(Case {
            name: format!("home {name}"),
            setup: std::sync::Arc::new(Box::new(move |r: &Path| {
                let h = r.parent().unwrap().join("home");
                std::fs::create_dir_all(h.join(".spec-kitty")).unwrap();
                setup(&h)
            })),
            argv: argv.iter().map(|x| s(x)).collect(),
            env: env.iter().map(|(k, v)| (s(k), s(v))).collect(),
            stdin: b"pw\n".to_vec(),
            names: names.iter().map(|n| s(n)).collect(),
        });
    }
    c
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            copy_tree(&e.path(), &t);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &t).unwrap();
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

/// Every entry under `dir` (not following links): path → kind and content (files), target
/// (links). Derived lock files and git's index are left out.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(dir).unwrap().to_path_buf();
            let r = rel.to_string_lossy();
            if r == ".git/index"
                || r.starts_with(".git/spec-kitty")
                || r.starts_with(".git/objects")
                || r.ends_with(".lock")
            {
                continue;
            }
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                let mut v = b"link:".to_vec();
                v.extend(std::fs::read_link(&p).unwrap().to_string_lossy().as_bytes());
                out.insert(rel, v);
            } else if ft.is_dir() {
                out.insert(rel, b"dir".to_vec());
                stack.push(p);
            } else if ft.is_file() {
                out.insert(rel, std::fs::read(&p).unwrap());
            } else {
                out.insert(rel, b"special".to_vec());
            }
        }
    }
    out
}

fn changed(a: &BTreeMap<PathBuf, Vec<u8>>, b: &BTreeMap<PathBuf, Vec<u8>>) -> Vec<String> {
    let mut d = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => d.push(format!("-{}", k.display())),
            Some(w) if w != v => d.push(format!("~{}", k.display())),
            _ => {}
        }
    }
    for k in b.keys() {
        if !a.contains_key(k) {
            d.push(format!("+{}", k.display()));
        }
    }
    d
}

fn has_control(text: &str) -> bool {
    text.chars()
        .any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{7f}')
}

#[derive(Default)]
struct Tally {
    runs: usize,
    failed_runs: usize,
    panics: usize,
    hangs: usize,
    changed_on_failure: usize,
    outside_writes: usize,
    json_lines: usize,
    messages: usize,
    leaks: usize,
    defects: Vec<String>,
}

fn run_case(case: &Case, template: &Path, scratch: &Path, i: usize, tally: &Mutex<Tally>) {
    let base = scratch.join(format!("c{i}"));
    let root = base.join("repo");
    let home = base.join("home");
    let outside = base.join("outside");
    copy_tree(template, &root);
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("victim.txt"), "victim\n").unwrap();
    (case.setup)(&root);

    let before = (tree(&root), tree(&home), tree(&outside));
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("spec-kitty"))
        .args(&case.argv)
        .current_dir(&root)
        .env_remove("SPECIFY_REPO_ROOT")
        .env_remove("SPEC_KITTY_ENABLE_SAAS_SYNC")
        .env("HOME", &home)
        .env("SPEC_KITTY_HOME", home.join(".spec-kitty"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "T")
        .env("GIT_AUTHOR_EMAIL", "t@example.test")
        .env("GIT_COMMITTER_NAME", "T")
        .env("GIT_COMMITTER_EMAIL", "t@example.test")
        .envs(case.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = case.stdin.clone();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out_pipe.read_to_end(&mut b);
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err_pipe.read_to_end(&mut b);
        b
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if start.elapsed() > HANG_BOUND {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = feeder.join();
    let stdout = String::from_utf8_lossy(&out_t.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap()).into_owned();
    let after = (tree(&root), tree(&home), tree(&outside));

    let mut t = tally.lock().unwrap();
    t.runs += 1;
    let name = &case.name;
    let Some(status) = status else {
        t.hangs += 1;
        t.defects.push(format!("{name}: hang (killed)"));
        return;
    };
    let code = status.code().unwrap_or(-1);
    if code == 101 || stderr.contains("panicked") {
        t.panics += 1;
        t.defects.push(format!("{name}: panic: {stderr}"));
    }
    let api = case.argv.first().is_some_and(|a| a == "orchestrator-api");
    if api {
        let lines: Vec<&str> = stdout.lines().collect();
        if lines.len() != 1 || serde_json::from_str::<serde_json::Value>(lines[0]).is_err() {
            t.json_lines += 1;
            t.defects
                .push(format!("{name}: orchestrator-api printed {stdout:?}"));
        }
    }
    let outside_changed = changed(&before.2, &after.2);
    let mut strays: Vec<String> = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !["repo", "home", "outside"].contains(&n.as_str()))
        .collect();
    strays.extend(outside_changed);
    if !strays.is_empty() {
        t.outside_writes += 1;
        t.defects
            .push(format!("{name}: wrote outside the fence: {strays:?}"));
    }
    let json_out = case.argv.iter().any(|a| a == "--json") || api;
    if !json_out && has_control(&stdout) || has_control(&stderr) {
        t.leaks += 1;
        t.defects.push(format!(
            "{name}: control characters in output: {stdout:?} {stderr:?}"
        ));
    }
    if stdout.contains(SECRET) || stderr.contains(SECRET) {
        t.leaks += 1;
        t.defects
            .push(format!("{name}: secret shown: {stdout} {stderr}"));
    }
    if code == 0 {
        return;
    }
    t.failed_runs += 1;
    let diff: Vec<String> = changed(&before.0, &after.0)
        .into_iter()
        .chain(
            changed(&before.1, &after.1)
                .into_iter()
                .map(|d| format!("home {d}")),
        )
        .collect();
    if !diff.is_empty() {
        t.changed_on_failure += 1;
        t.defects
            .push(format!("{name}: failed (exit {code}) but changed {diff:?}"));
    }
    let message = format!("{stdout}\n{stderr}");
    let lower = message.to_lowercase();
    let names_it = case
        .names
        .iter()
        .any(|n| !n.is_empty() && message.contains(n.as_str()));
    // The host contract keeps upstream's wording for these (click's usage errors, the
    // not-found texts); the argument they name is the remedy's subject.
    let upstream_wording = api && UPSTREAM_TEXTS.iter().any(|t| message.contains(t));
    let remedy = upstream_wording || REMEDIES.iter().any(|r| lower.contains(r));
    if !names_it || !remedy {
        t.messages += 1;
        t.defects.push(format!(
            "{name}: message (names {:?}: {names_it}, remedy: {remedy}): {}",
            case.names,
            message.trim()
        ));
    }
}

fn template() -> (tempfile::TempDir, PathBuf) {
    let (tmp, root) = fixture();
    let out = super::support::bin(&root)
        .args(["agent", "mission", "finalize-tasks", "--mission", MISSION])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    git(&root, &["branch", "victim"]);
    for e in std::fs::read_dir(root.join(".git/hooks")).unwrap() {
        let _ = std::fs::remove_file(e.unwrap().path());
    }
    (tmp, root)
}

#[test]
fn bad_input_corpus_keeps_every_invariant() {
    let cases = corpus();
    assert!(cases.len() >= 300, "only {} cases", cases.len());
    // `SPEC_KITTY_CORPUS_FILTER=text` runs only the cases whose name contains `text` (to look
    // at one defect); the default runs them all.
    let cases: Vec<Case> = match std::env::var("SPEC_KITTY_CORPUS_FILTER") {
        Ok(f) if !f.is_empty() => cases.into_iter().filter(|c| c.name.contains(&f)).collect(),
        _ => cases,
    };
    let (_t, template) = template();
    // Runs copy a repository each: on tmpfs where there is one (file creation on a shared
    // CI disk costs more than the commands themselves).
    let shm = Path::new("/dev/shm");
    let scratch = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap_or_else(|_| tempfile::tempdir().unwrap())
    } else {
        tempfile::tempdir().unwrap()
    };
    let tally = Mutex::new(Tally::default());
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 4);
    std::thread::scope(|sc| {
        for _ in 0..workers {
            sc.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(case) = cases.get(i) else { break };
                    run_case(case, &template, scratch.path(), i, &tally);
                    let _ = std::fs::remove_dir_all(scratch.path().join(format!("c{i}")));
                }
            });
        }
    });
    let t = tally.into_inner().unwrap();
    eprintln!(
        "bad_input: {} cases, {} runs ({} failed as expected), {} panics, {} hangs, \
         {} failures that changed bytes, {} writes outside the fence, {} orchestrator-api \
         outputs not one JSON line, {} messages without file or remedy, {} leaks (control \
         characters or secrets)",
        cases.len(),
        t.runs,
        t.failed_runs,
        t.panics,
        t.hangs,
        t.changed_on_failure,
        t.outside_writes,
        t.json_lines,
        t.messages,
        t.leaks
    );
    assert!(
        t.defects.is_empty(),
        "{} defects:\n{}",
        t.defects.len(),
        t.defects.join("\n")
    );
}

/// The defects the corpus was written for, each asserted on its own effect.
#[test]
fn committed_lanes_and_links_cannot_reach_git_options_or_outside_files() {
    let (tmp, root) = template();
    let api = |root: &Path| {
        let out = super::support::bin(root)
            .args([
                "orchestrator-api",
                "start-implementation",
                "--mission",
                MISSION,
                "--wp",
                "WP01",
                "--actor",
                "bot",
                "--policy",
                POLICY,
            ])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v
    };
    let lanes = mdir(&root).join("lanes.json");
    let original = std::fs::read(&lanes).unwrap();

    // `mission_branch: "-D"` with target `victim` would run `git branch -D victim`.
    edit_json(&lanes, |v| {
        v["mission_branch"] = "-D".into();
        v["target_branch"] = "victim".into();
    });
    let v = api(&root);
    assert_eq!(v["success"], false, "{v}");
    assert!(
        v["data"]["message"]
            .as_str()
            .unwrap()
            .contains("lanes.json"),
        "{v}"
    );
    git(&root, &["rev-parse", "--verify", "refs/heads/victim"]);

    // `mission_slug: "../../escaped"` would put the worktree outside the repository.
    write(&lanes, &original);
    edit_json(&lanes, |v| v["mission_slug"] = "../../escaped".into());
    let v = api(&root);
    assert_eq!(v["success"], false, "{v}");
    let escaped: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("escaped"))
        .collect();
    assert!(escaped.is_empty(), "{escaped:?}");

    // A committed link at the status log is refused, not appended through.
    write(&lanes, &original);
    let victim = tmp.path().join("victim.txt");
    std::fs::write(&victim, "victim\n").unwrap();
    let log = mdir(&root).join("status.events.jsonl");
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink(&victim, &log).unwrap();
    let v = api(&root);
    assert_eq!(v["success"], false, "{v}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "victim\n");
    let out = super::support::bin(&root)
        .args([
            "agent",
            "tasks",
            "mark-status",
            "T001",
            "--status",
            "done",
            "--mission",
            MISSION,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "victim\n");
}
