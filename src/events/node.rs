//! `node_id`: the first 12 hex digits of `sha256("<hostname>:<user>")`, as upstream computes it
//! (`socket.gethostname()`, `getpass.getuser()`).

use std::fs;
use std::process::Command;

use sha2::{Digest, Sha256};

/// The node id of this machine and user.
pub fn generate_node_id() -> String {
    node_id_for(&hostname(), &username())
}

/// `sha256("{host}:{user}")[..12]` in lowercase hex.
pub fn node_id_for(host: &str, user: &str) -> String {
    let digest = Sha256::digest(format!("{host}:{user}").as_bytes());
    let mut hex = String::with_capacity(12);
    for byte in digest.iter().take(6) {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// `socket.gethostname()`: the kernel's node name.
fn hostname() -> String {
    let from_proc = fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned());
    let from_command = || {
        Command::new("hostname")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let from_env = || {
        ["HOSTNAME", "COMPUTERNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok())
    };
    from_proc
        .filter(|s| !s.is_empty())
        .or_else(|| from_command().filter(|s| !s.is_empty()))
        .or_else(|| from_env().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// `getpass.getuser()`: `LOGNAME`, `USER`, `LNAME`, `USERNAME`, then the account database.
fn username() -> String {
    ["LOGNAME", "USER", "LNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .or_else(passwd_name)
        .or_else(|| {
            Command::new("id")
                .arg("-un")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `pwd.getpwuid(os.getuid())` for accounts in `/etc/passwd` (the process's uid read from the
/// owner of `/proc/self`), without spawning `id`; other accounts (NSS) fall back to `id -un`.
fn passwd_name() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid().to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    name_of_uid(&passwd, &uid)
}

fn name_of_uid(passwd: &str, uid: &str) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        (fields.next()? == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_passwd_entry_of_a_uid_names_the_user() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\n#comment\nbob:x:1000:1000::/home/bob:/bin/sh\n";
        assert_eq!(name_of_uid(passwd, "1000").as_deref(), Some("bob"));
        assert_eq!(name_of_uid(passwd, "0").as_deref(), Some("root"));
        assert_eq!(name_of_uid(passwd, "42"), None);
    }

    #[test]
    fn matches_python_formula() {
        // hashlib.sha256(b"host:user").hexdigest()[:12]
        assert_eq!(node_id_for("host", "user"), "2e1a29e6f4ef");
        let id = generate_node_id();
        assert_eq!(id.len(), 12);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }
}
