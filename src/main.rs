//! The `mediadb` command line: a thin dispatcher onto the library.

use clap::{Parser, Subcommand};
use mediadb::config::layers::{self, LayerError};
use mediadb::config::{Config, LogFormat};
use mediadb::progress::Progress;
use mediadb::{app, ops};

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
    /// Runs the import pipeline's rendering on one file (PDF, video and SVG need pdftoppm, ffmpeg and rsvg-convert).
    Convert {
        input: std::path::PathBuf,
        /// A preset id (`thumbimage`), an output name (`image200x200.jpg`), or `all`: every
        /// on-import preset from one decode, as the import makes them, into the directory --output.
        #[arg(long)]
        preset: String,
        /// Where to write the rendition (`.jpg` or `.webp` picks the encoding); a directory
        /// with `--preset all`.
        #[arg(long)]
        output: std::path::PathBuf,
        /// Refuse images whose header announces more pixels (as the server's setting).
        #[arg(long, env = "MEDIADB_MAX_IMAGE_PIXELS", default_value_t = mediadb::media::render::DEFAULT_MAX_PIXELS)]
        max_image_pixels: u64,
    },
    /// Checks that the database and the file storage agree; exit status 0 only when they do.
    Fsck(FsckArgs),
    /// Benchmarks that print figures as JSON.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Copy an embedded installation (SQLite + local files) to PostgreSQL and S3.
    Migrate(mediadb::migrate::MigrateArgs),
    /// Imports a folder tree into the catalog (sourcepaths from the relative paths);
    /// rerunning skips what is already in; duplicate content is reported.
    Import(ImportArgs),
    /// The configuration: `config check` validates it and prints the effective values.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validates the layered configuration (file, environment, flags) and prints it,
    /// secrets redacted; exit status 2 when it is invalid.
    Check(ServeArgs),
}

#[derive(clap::Args)]
struct ImportArgs {
    /// The folder to import.
    dir: std::path::PathBuf,
    #[command(flatten)]
    config: Config,
    /// The site (catalog) to import into (default: the first of `sites`).
    #[arg(long)]
    site: Option<String>,
    /// Put before every relative path in the sourcepath (`imports/2024`).
    #[arg(long, default_value = "")]
    prefix: String,
    /// The user recorded as owner of the new assets.
    #[arg(long, default_value = "admin")]
    owner: String,
    /// Store files whose content is already in the catalog too.
    #[arg(long)]
    allow_duplicates: bool,
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

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MEDIADB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a terminal: a log file or journal gets plain text (and no
    // per-line escape-code formatting).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => fmt.init(),
        LogFormat::Json => fmt.json().flatten_event(true).with_current_span(false).init(),
    }
}

/// The command line with the configuration file layered under it; a bad file or value
/// ends the process here, naming the key.
fn parse_cli() -> layers::Layered<Cli> {
    match layers::parse::<Cli>(std::env::args_os().collect()) {
        Ok(l) => l,
        Err(LayerError::Clap(e)) => e.exit(),
        Err(LayerError::Config(m)) => {
            eprintln!("mediadb: invalid configuration: {m}");
            std::process::exit(2);
        }
    }
}

/// Binds an optional listener and says where on stdout (scripts and tests read it).
async fn bind_extra(addr: Option<std::net::SocketAddr>, what: &str) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    let Some(addr) = addr else { return Ok(None) };
    let l = tokio::net::TcpListener::bind(addr).await?;
    println!("mediadb {what} http://{}", l.local_addr()?);
    Ok(Some(l))
}

fn main() -> anyhow::Result<()> {
    limit_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

/// glibc's malloc gives threads arenas of their own, up to eight per core, and an arena
/// keeps what was freed in it: with the blocking pool's threads of an upload burst, the
/// conversions' and the writer's, the server's resident memory after the load benchmark
/// was 242-267 MB; with two arenas 137-160 MB. The price is contention on the arenas'
/// locks: searches and GETs make 35-40% fewer requests a second (still above their
/// targets; mimalloc was faster but held more, BENCHMARKS.md). Set before any thread
/// starts, which is why `main` builds the runtime by hand.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of the allocator; no thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

async fn run() -> anyhow::Result<()> {
    let layered = parse_cli();
    let log_format = layered
        .matches
        .try_get_one::<LogFormat>("log_format")
        .ok()
        .flatten()
        .copied()
        .unwrap_or(LogFormat::Human);
    init_logging(log_format);
    if let Some(f) = &layered.file {
        tracing::info!(file = %f.display(), "configuration file read");
    }
    if let Command::Config(ConfigCommand::Check(args)) = &layered.cli.command {
        let mut problems = Vec::new();
        if let Err(e) = args.config.validate() {
            problems.push(e.to_string());
        }
        if let (Some(cert), Some(key)) = (&args.config.tls_cert, &args.config.tls_key) {
            if let Err(e) = mediadb::tls::load(cert, key) {
                problems.push(e.to_string());
            }
        }
        print!("{}", layers::render(&layered));
        if problems.is_empty() {
            println!("# the configuration is valid");
            return Ok(());
        }
        for p in problems {
            eprintln!("mediadb: {p}");
        }
        std::process::exit(2);
    }
    match layered.cli.command {
        Command::Config(_) => Ok(()),
        Command::Serve(ServeArgs {
            mut config,
            no_local_worker,
        }) => {
            if no_local_worker {
                config.workers = 0;
            }
            let listen = config.listen;
            config.validate()?;
            if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
                mediadb::tls::load(cert, key)?;
            }
            let scheme = if config.tls_enabled() { "https" } else { "http" };
            let (redirect, metrics) = (config.redirect_listen, config.metrics_listen);
            let state = app::AppState::open(config).await?;
            let listener = tokio::net::TcpListener::bind(listen).await?;
            // Printed on stdout so scripts (and tests) can find the chosen port.
            println!("mediadb listening on {scheme}://{}", listener.local_addr()?);
            let extra = app::ExtraListeners {
                redirect: bind_extra(redirect, "redirecting to HTTPS from").await?,
                metrics: bind_extra(metrics, "metrics on").await?,
            };
            app::serve_all(state, listener, extra, app::shutdown_signal()).await?;
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
        Command::Convert {
            input,
            preset,
            output,
            max_image_pixels,
        } => {
            let opts = mediadb::media::RenderOptions {
                max_pixels: max_image_pixels,
                ..Default::default()
            };
            let r = mediadb::media::convert::convert_with(&input, &preset, &output, &opts)?;
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
            let progress = Progress::new("assets", 0);
            let r = ops::fsck::run_with_progress(state.store.as_ref(), &state.blobs, &sites, &tmp, &opts, &progress)
                .await?;
            progress.finish();
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
            // On a runtime worker, as a request's search runs in the server (`block_on`'s
            // own thread is not one: every answer from the database crossed threads).
            let out = tokio::spawn(mediadb::bench::search(args)).await??;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::Bench(BenchCommand::Http(args)) => {
            let out = mediadb::bench_http::http(args).await?;
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Command::Migrate(args) => mediadb::migrate::run(args).await,
        Command::Import(args) => import(args).await,
    }
}

async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let mut config = args.config;
    // This process only queues the renditions; a server or `mediadb worker` makes them.
    config.workers = 0;
    anyhow::ensure!(args.dir.is_dir(), "{} is not a folder", args.dir.display());
    let state = app::AppState::open(config).await?;
    let catalog = state
        .config
        .catalog_for_site(args.site.as_deref())
        .ok_or_else(|| anyhow::anyhow!("no site \"{}\" (see --sites)", args.site.as_deref().unwrap_or("")))?
        .to_string();
    let ctx = ops::Ctx {
        store: state.store.as_ref(),
        blobs: &state.blobs,
        catalog: &catalog,
        user: &args.owner,
        address: "mediadb import",
    };
    let opts = ops::folder_import::Options {
        prefix: args.prefix,
        allow_duplicates: args.allow_duplicates,
        max_bytes: state.config.max_upload_bytes,
    };
    let progress = Progress::new("files", 0);
    let s = ops::folder_import::run(&ctx, &args.dir, &opts, &progress).await?;
    println!(
        "imported {} of {} files ({:.1} MiB), {} already in the catalog, {} duplicates, {} failed",
        s.imported,
        s.files,
        s.bytes as f64 / (1024.0 * 1024.0),
        s.already,
        s.duplicates.len(),
        s.failed.len()
    );
    for (path, of) in &s.duplicates {
        println!("duplicate: {path} = {of}");
    }
    for (path, why) in &s.failed {
        println!("failed: {path}: {why}");
    }
    if s.imported > 0 {
        println!(
            "queued {} import jobs: a running `mediadb serve` or `mediadb worker` makes the renditions",
            s.imported
        );
    }
    if !s.failed.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
