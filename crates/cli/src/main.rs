//! The `turncoat` command line: `turncoat <noun> <verb>`.
//!
//! Exit status: 0 clean, 1 findings (for commands that report them), 2
//! error.

mod bench;
mod cli;
mod demo;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

/// Ingest allocates many short-lived strings; mimalloc handles that
/// pattern far better than the system allocator (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        // A closed pipe (`turncoat alerts | head`) is the reader's choice, not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
