//! The `reprise` binary: parse the command line, call into the library, map errors to exit codes.

fn main() -> std::process::ExitCode {
    reprise::cli::main()
}
