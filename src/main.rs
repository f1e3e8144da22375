//! The `spec-kitty` binary: parse arguments, run, exit with the command's status.

fn main() -> std::process::ExitCode {
    spec_kitty::cli::main()
}
