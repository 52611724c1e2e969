//! `hearthd` — see the library's documentation; this is only the entry point.

fn main() -> std::process::ExitCode {
    hearthd::cli::main()
}
