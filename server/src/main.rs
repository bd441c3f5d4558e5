//! The `quarry` binary.

use clap::Parser;
use quarry_server::config::{Cli, Command};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // s3s logs every client error (a 404 HEAD, say) at error level; it stays quiet unless the
    // filter names it. Ours say what matters.
    let spec = std::env::var("QUARRY_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let spec = if spec.contains("s3s") { spec } else { format!("{spec},s3s=off") };
    let filter = tracing_subscriber::EnvFilter::try_new(&spec).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,s3s=off"));
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Server(args) => runtime.block_on(quarry_server::serve::run(args)),
        Command::Heal(args) => runtime.block_on(quarry_server::serve::heal(args)),
        Command::Admin(args) => runtime.block_on(quarry_server::admin::run(args)),
    }
}
