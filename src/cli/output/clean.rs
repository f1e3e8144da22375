//! Text shown on a terminal comes from repositories (WP titles, mission titles, lane ids, file
//! names) and servers (rejection reasons): [`for_terminal`] removes terminal control sequences
//! from it and hides the user info (`user:password@`) of any URL. It is applied where such text
//! enters human output: each renderer passes every field of outside origin through [`shown`]
//! (or [`shown_path`]), and a failed command's `error:` line is cleaned as a whole. The rendered
//! document itself is not cleaned, so the CLI's own colours (the status board) survive.

use std::borrow::Cow;
use std::path::Path;

pub use crate::saas::settings::redact_userinfo;

/// `text` with escape sequences (CSI, OSC, DCS … and lone ESC), C0 controls other than
/// newline and tab, DEL and C1 controls removed, and URL user info replaced by `***@`.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    let needs = text.chars().any(|c| is_control(c) || c == '@');
    if !needs {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            // C1 CSI / OSC / DCS introducers: skip like their ESC forms.
            '\u{9b}' => skip_until_final(&mut chars),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            c if is_control(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(redact_userinfo(&out))
}

/// Text of outside origin (a repository file, a server, an argument) as it enters human output:
/// [`for_terminal`].
pub fn shown(text: &str) -> Cow<'_, str> {
    for_terminal(text)
}

/// A path as it enters human output (a directory name can carry escape sequences too).
pub fn shown_path(path: &Path) -> String {
    for_terminal(&path.display().to_string()).into_owned()
}

fn is_control(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || c == '\u{7f}'
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

fn skip_escape(chars: &mut Chars<'_>) {
    match chars.next() {
        Some('[') => skip_until_final(chars),
        Some(']' | 'P' | 'X' | '^' | '_') => skip_string(chars),
        // Two-character and charset sequences (ESC ( B, ESC c …).
        Some('(' | ')' | '*' | '+' | '#' | '%') => {
            chars.next();
        }
        _ => {}
    }
}

/// CSI: parameter and intermediate bytes, then one final byte in `@`..=`~`.
fn skip_until_final(chars: &mut Chars<'_>) {
    for c in chars.by_ref() {
        if ('@'..='~').contains(&c) || !(' '..='~').contains(&c) {
            break;
        }
    }
}

/// OSC/DCS/…: up to BEL or ST (ESC \ or U+009C).
fn skip_string(chars: &mut Chars<'_>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => break,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                break;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_sequences_are_removed() {
        assert_eq!(for_terminal("plain"), "plain");
        assert_eq!(for_terminal("a\u{1b}[31mred\u{1b}[0m b"), "ared b");
        assert_eq!(for_terminal("t\u{1b}]0;pwned\u{7}itle"), "title");
        assert_eq!(for_terminal("t\u{1b}]8;;http://x\u{1b}\\link"), "tlink");
        assert_eq!(for_terminal("a\rb\u{8}c\u{7f}\u{9b}2Jd\n\te"), "abcd\n\te");
        assert_eq!(for_terminal("\u{1b}"), "");
    }

    #[test]
    fn url_user_info_is_hidden() {
        assert_eq!(
            for_terminal("server https://bob:hunter2@sync.example.com/x (refused)"),
            "server https://***@sync.example.com/x (refused)"
        );
        assert_eq!(for_terminal("mail a@b.c"), "mail a@b.c");
        assert_eq!(redact_userinfo("'http://u:p@h'"), "'http://***@h'");
    }
}
