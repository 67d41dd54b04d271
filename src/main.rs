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
    Serve(ServeArgs),
    /// Run job workers and maintenance only, no HTTP (scale-out: any number of them may
    /// share one database and one bucket).
    Worker(Config),
    /// Runs the import pipeline's rendering on one file (PDF and video need pdftoppm and ffmpeg).
    Convert {
        input: std::path::PathBuf,
        /// A preset id (`thumbimage`) or output name (`image200x200.jpg`).
        #[arg(long)]
        preset: String,
        /// Where to write the rendition (`.jpg` or `.webp` picks the encoding).
        #[arg(long)]
        output: std::path::PathBuf,
    },
    /// Checks that the database and the file storage agree; exit status 0 only when they do.
    Fsck(FsckArgs),
    /// Benchmarks that print figures as JSON.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Copy an embedded installation (SQLite + local files) to PostgreSQL and S3.
    Migrate(mediadb::migrate::MigrateArgs),
}

#[derive(clap::Args)]
struct FsckArgs {
    #[command(flatten)]
    config: Config,
    /// Fix what is safe: unreferenced files to lost+found/, stuck jobs to the queue,
    /// missing renditions made again, stale temporary files removed.
    #[arg(long)]
    repair: bool,
    /// Also read every original and compare its SHA-256 (slow on large catalogs).
    #[arg(long)]
    verify_hashes: bool,
    /// Unreferenced files younger than this many seconds are not reported (a running
    /// server may be mid-upload); 0 when no server runs, so that everything counts.
    #[arg(long, default_value_t = 900)]
    min_age_secs: i64,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Loads N synthetic assets and times each search shape (p50/p99 per shape).
    Search(mediadb::bench::SearchBenchArgs),
    /// Loads N synthetic assets, starts the server, and runs search, data GET/PUT, upload
    /// and delete alone and mixed over concurrent connections (requests/s, p50/p99,
    /// errors, server memory, cold start).
    Http(mediadb::bench_http::HttpBenchArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    config: Config,
    /// Serve HTTP only: jobs run in `mediadb worker` processes.
    #[arg(long, env = "MEDIADB_NO_LOCAL_WORKER", default_value_t = false)]
    no_local_worker: bool,
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
        Command::Serve(ServeArgs {
            mut config,
            no_local_worker,
        }) => {
            if no_local_worker {
                config.workers = 0;
            }
            let listen = config.listen;
            let state = app::AppState::open(config).await?;
            let listener = tokio::net::TcpListener::bind(listen).await?;
            // Printed on stdout so scripts (and tests) can find the chosen port.
            println!("mediadb listening on http://{}", listener.local_addr()?);
            app::serve(state, listener, app::shutdown_signal()).await?;
            Ok(())
        }
        Command::Worker(config) => {
            anyhow::ensure!(config.workers > 0, "a worker needs --workers 1 or more");
            let state = app::AppState::open(config).await?;
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let tasks = state.spawn_background(&stop_rx);
            println!("mediadb worker running {} job workers", state.config.workers);
            app::shutdown_signal().await;
            // Workers finish the job in hand, then stop; an interrupted one is retried
            // elsewhere when its lease runs out.
            let _ = stop_tx.send(true);
            for t in tasks {
                let _ = t.await;
            }
            Ok(())
        }
        Command::Convert { input, preset, output } => {
            let r = mediadb::media::convert_cli(&input, &preset, &output)?;
            println!("{} {}x{} {} bytes", output.display(), r.width, r.height, r.bytes);
            Ok(())
        }
        Command::Fsck(FsckArgs {
            mut config,
            repair,
            verify_hashes,
            min_age_secs,
        }) => {
            config.workers = 0;
            let state = app::AppState::open(config).await?;
            let sites = state.config.sites.clone();
            let tmp = state.config.data_dir.join("tmp");
            let opts = mediadb::ops::fsck::Options {
                repair,
                verify: verify_hashes,
                min_age_secs,
            };
            let r = mediadb::ops::fsck::run_with(state.store.as_ref(), &state.blobs, &sites, &tmp, &opts).await?;
            println!("checked {} assets and {} files", r.assets, r.files);
            for p in &r.problems {
                println!("problem: {p}");
            }
            for f in &r.repaired {
                println!("repaired: {f}");
            }
            let unfixed = if repair {
                r.unrepairable
            } else {
                r.problems.len() as u64
            };
            if r.consistent() {
                println!("consistent");
            }
            if unfixed > 0 {
                println!("{unfixed} problem(s) remain");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Bench(BenchCommand::Search(args)) => {
            let out = mediadb::bench::search(args).await?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::Bench(BenchCommand::Http(args)) => {
            let out = mediadb::bench_http::http(args).await?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::Migrate(args) => mediadb::migrate::run(args).await,
    }
}
