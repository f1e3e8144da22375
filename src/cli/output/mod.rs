//! The documents the CLI prints: one `Serialize` struct per `--json` document, and the human
//! text of the same struct ([`Render`]). Field order is the JSON key order.

pub mod auth;
pub mod body_queue;
pub mod clean;
pub mod contract;
pub mod mission;
pub mod status;
pub mod sync;
pub mod sync_now;
pub mod tasks;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::error_code::ErrorCode;

/// The human output of a document, exactly as printed on stdout.
pub trait Render: Serialize {
    fn text(&self) -> String;
}

/// Write to stdout (what the CLI's `print!`/`println!` expand to): a closed stdout (EPIPE)
/// ends the process quietly with status 141 (128 + SIGPIPE, what a shell reports for a process
/// killed by it); another write error with status 1 and one line on stderr.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// Print a JSON document on stdout (one line).
pub fn print_json<T: Serialize + ?Sized>(doc: &T) {
    match serde_json::to_string(doc) {
        Ok(line) => println!("{line}"),
        Err(e) => eprintln!("error: cannot print the JSON document: {e}"),
    }
}

/// Print `doc` as one JSON line, or as its text. The text is printed as rendered: each
/// renderer cleans the outside text it shows ([`clean::shown`]); JSON escapes control
/// characters itself.
pub fn emit<T: Render>(doc: &T, json: bool) {
    if json {
        print_json(doc);
    } else {
        print!("{}", doc.text());
    }
}

/// `{"code", "message"}`.
#[derive(Debug, Clone, Serialize)]
pub struct CodeMessage {
    pub code: ErrorCode,
    pub message: String,
}

/// `{"error": {"code", "message"}}`: a failed command's document.
#[derive(Debug, Serialize)]
pub struct ErrorDoc<'a> {
    pub error: &'a CodeMessage,
}

/// Counts by key, serialized as a JSON object in insertion order.
#[derive(Debug, Clone, Default)]
pub struct Tally<K>(pub Vec<(K, u64)>);

impl<K: PartialEq> Tally<K> {
    /// Count one more `key` (a new key goes last).
    pub fn add(&mut self, key: K) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => self.0.push((key, 1)),
        }
    }
}

impl<K: Serialize> Serialize for Tally<K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, n) in &self.0 {
            map.serialize_entry(k, n)?;
        }
        map.end()
    }
}
