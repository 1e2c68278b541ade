//! The `turncoat` command line: `turncoat <noun> <verb>`.
//!
//! Exit status: 0 clean, 1 findings (for commands that report them), 2
//! error.

mod commands;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

/// Ingest allocates many short-lived strings; mimalloc handles that
/// pattern far better than the system allocator (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Like other Unix filters, end quietly when the reader of our output
    // goes away (`turncoat alerts | head`) instead of failing on a write.
    // SAFETY: restoring the default disposition of one signal before any
    // thread exists has no other effect.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args = commands::Cli::parse();
    match commands::run(args) {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("error: {}", output::error_report(&*e));
            output::Exit::Error.into()
        }
    }
}
