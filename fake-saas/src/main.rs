//! `spec-kitty-fake-saas [--user NAME:PASSWORD[:TEAM]]...`
//!
//! Starts the fake SaaS on 127.0.0.1 (ephemeral port), prints its URL as one
//! line on stdout, and serves until stdin reaches end-of-file or the process
//! is killed. Handy for manual runs and benchmark scripts.

use std::io::{Read, Write};
use std::process::ExitCode;

use spec_kitty_fake_saas::FakeSaas;

const USAGE: &str = "usage: spec-kitty-fake-saas [--user NAME:PASSWORD[:TEAM]]...\n\
Prints the server URL on stdout, then serves until stdin closes.";

/// A `--user` value: `NAME:PASSWORD` or `NAME:PASSWORD:TEAM` (so a password
/// cannot contain ':').
fn parse_user(spec: &str) -> Option<(String, String, Option<String>)> {
    let mut parts = spec.splitn(3, ':');
    let name = parts.next().filter(|s| !s.is_empty())?;
    let password = parts.next()?;
    let team = parts.next().filter(|s| !s.is_empty());
    Some((
        name.to_owned(),
        password.to_owned(),
        team.map(str::to_owned),
    ))
}

fn main() -> ExitCode {
    let mut users = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let spec = match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--user" => args.next(),
            other => other.strip_prefix("--user=").map(str::to_owned),
        };
        match spec.as_deref().and_then(parse_user) {
            Some(user) => users.push(user),
            None => {
                eprintln!("bad argument {arg:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }

    let saas = match FakeSaas::try_start() {
        Ok(saas) => saas,
        Err(e) => {
            eprintln!("fake SaaS failed to start: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (name, password, team) in &users {
        saas.add_user(name, password, team.as_deref());
    }
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "{}", saas.url())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    // Serve until stdin reaches EOF (or errors); the server runs on its own thread.
    let mut sink = [0u8; 1024];
    let mut stdin = std::io::stdin();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    ExitCode::SUCCESS
}
