//! The `mediadb` command line: a thin dispatcher onto the library.

use clap::{Parser, Subcommand};
use mediadb::{app, config::Config};

#[derive(Parser)]
#[command(
    name = "mediadb",
    version,
    about = "A digital asset management server that speaks the EnterMediaDB API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve(Config),
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MEDIADB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Serve(config) => {
            let listen = config.listen;
            let state = app::AppState::open(config).await?;
            let listener = tokio::net::TcpListener::bind(listen).await?;
            // Printed on stdout so scripts (and tests) can find the chosen port.
            println!("mediadb listening on http://{}", listener.local_addr()?);
            app::serve(state, listener, app::shutdown_signal()).await?;
            Ok(())
        }
    }
}
