//! `--color auto|always|never` and the environment, as ripgrep reads them: `never` and
//! `always` win; `auto` paints only a terminal, and not when `NO_COLOR` is set (non-empty) or
//! `TERM=dumb`; `CLICOLOR_FORCE` (non-empty, not `0`) paints under `auto` even when piped.

use std::io::IsTerminal;

/// The `--color` flag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

/// What the environment says, read once.
#[derive(Debug, Clone, Default)]
pub struct ColorEnv {
    pub no_color: bool,
    pub clicolor_force: bool,
    pub term_dumb: bool,
    pub stdout_is_terminal: bool,
}

impl ColorEnv {
    pub fn from_process() -> Self {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        Self {
            no_color: set("NO_COLOR"),
            clicolor_force: set("CLICOLOR_FORCE")
                && std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| v != "0"),
            term_dumb: std::env::var_os("TERM").is_some_and(|t| t == "dumb"),
            stdout_is_terminal: std::io::stdout().is_terminal(),
        }
    }
}

impl ColorChoice {
    /// Whether to paint, given the environment.
    pub fn paint(self, env: &ColorEnv) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto if env.no_color => false,
            ColorChoice::Auto if env.clicolor_force => true,
            ColorChoice::Auto => env.stdout_is_terminal && !env.term_dumb,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_follow_ripgrep() {
        let tty = ColorEnv {
            stdout_is_terminal: true,
            ..ColorEnv::default()
        };
        assert!(ColorChoice::Auto.paint(&tty));
        assert!(!ColorChoice::Auto.paint(&ColorEnv::default()), "piped");
        assert!(!ColorChoice::Never.paint(&tty));
        assert!(ColorChoice::Always.paint(&ColorEnv::default()));
        let no_color = ColorEnv {
            no_color: true,
            ..tty.clone()
        };
        assert!(!ColorChoice::Auto.paint(&no_color));
        assert!(
            ColorChoice::Always.paint(&no_color),
            "an explicit flag wins"
        );
        let dumb = ColorEnv {
            term_dumb: true,
            ..tty.clone()
        };
        assert!(!ColorChoice::Auto.paint(&dumb));
        let forced = ColorEnv {
            clicolor_force: true,
            ..ColorEnv::default()
        };
        assert!(
            ColorChoice::Auto.paint(&forced),
            "CLICOLOR_FORCE paints a pipe"
        );
        assert!(!ColorChoice::Never.paint(&forced));
    }
}
