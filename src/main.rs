//! The `athena_rs` binary: parse the command line and hand over to the library.

fn main() -> std::process::ExitCode {
    athena_rs::cli::main()
}
