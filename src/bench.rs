//! `mediadb bench search`: loads N synthetic assets with realistic metadata straight
//! through the store, runs each query shape many times and prints p50/p99 per shape as
//! JSON, so operators can size hardware and we can hold ourselves to the targets.

use crate::app::AppState;
use crate::config::Config;
use crate::domain::asset::Asset;
use crate::domain::dates;
use crate::domain::query::{self, SearchRequest};
use crate::ops::assets::field_info;
use crate::store::Scope;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Clone, clap::Args)]
pub struct SearchBenchArgs {
    /// How many synthetic assets to load.
    #[arg(long, default_value_t = 100_000)]
    pub assets: usize,
    /// How many times each query shape runs.
    #[arg(long, default_value_t = 200)]
    pub runs: usize,
    /// Unmeasured runs of each shape before its measured ones: connections opened,
    /// statements prepared and caches warm, as in a server that has been up a while
    /// (otherwise the first searches on new PostgreSQL connections made the p99).
    #[arg(long, default_value_t = 10)]
    pub warmup: usize,
    /// Where to build the catalog (a new temporary directory by default).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Only these query shapes, comma-separated (`all_top20_by_date,freeform_word`);
    /// all by default. For profiling one shape.
    #[arg(long, value_delimiter = ',')]
    pub shapes: Vec<String>,
}

const WORDS: &[&str] = &[
    "harbor", "sunset", "mountain", "river", "portrait", "market", "festival", "bridge", "forest", "desert", "city",
    "night", "winter", "summer", "garden", "street", "ocean", "island", "castle", "village", "train", "airport",
    "museum", "concert", "stadium", "school", "office", "factory", "farm", "beach", "lake", "valley", "canyon",
    "temple", "church", "tower", "harvest", "parade", "wedding", "launch",
];
const TYPES: &[(&str, &str)] = &[
    ("photo", "jpg"),
    ("video", "mp4"),
    ("document", "pdf"),
    ("audio", "mp3"),
    ("graphic", "svg"),
    ("photo", "png"),
];
const KEYWORDS: usize = 3000;

pub(crate) fn keyword(i: usize) -> String {
    format!("{}{}", WORDS[i % WORDS.len()], i / WORDS.len())
}

pub(crate) fn synthetic(i: usize, rng: &mut StdRng, start_ms: i64, span_ms: i64) -> Asset {
    let (atype, ext) = TYPES[rng.gen_range(0..TYPES.len())];
    let w = |rng: &mut StdRng| WORDS[rng.gen_range(0..WORDS.len())];
    let name = format!("{}_{}_{i}.{ext}", w(rng), w(rng));
    let caption: Vec<&str> = (0..rng.gen_range(5..12)).map(|_| w(rng)).collect();
    // Keyword popularity is skewed, as in real catalogs.
    let kws: Vec<Value> = (0..rng.gen_range(1..=5))
        .map(|_| {
            let r: f64 = rng.gen();
            Value::String(keyword(((r * r) * KEYWORDS as f64) as usize))
        })
        .collect();
    let added = dates::format_emdb(
        chrono::DateTime::from_timestamp_millis(start_ms + rng.gen_range(0..span_ms)).unwrap_or_default(),
    );
    let mut f = Map::new();
    f.insert("name".into(), json!(name));
    f.insert("assettype".into(), json!(atype));
    f.insert("fileformat".into(), json!(ext));
    f.insert("keywords".into(), Value::Array(kws));
    f.insert("longcaption".into(), json!(caption.join(" ")));
    f.insert("assetaddeddate".into(), json!(added));
    f.insert("owner".into(), json!(format!("user{}", rng.gen_range(0..20))));
    f.insert("editstatus".into(), json!(if rng.gen_bool(0.7) { "6" } else { "1" }));
    f.insert("importstatus".into(), json!("complete"));
    f.insert(
        "filesize".into(),
        json!(rng.gen_range(10_000..50_000_000u64).to_string()),
    );
    f.insert("width".into(), json!(rng.gen_range(200..8000u32).to_string()));
    Asset {
        id: format!("b{i:08}"),
        // A folder at a time, as an import walks a tree (`mediadb import` even goes in
        // sorted path order): a folder's thousand files go in together, in no order.
        // Spread over every folder at once, each asset's entry in the live-sourcepath
        // index landed on a random page (7 s of the loading thread at a million assets).
        sourcepath: format!("bench/{}/{name}", i / 1000),
        fields: f,
        original: None,
    }
}

/// Assets per `insert_assets_bulk` call (a transaction each): large enough that the
/// per-transaction work (the full-text segment, count upserts, the commit) is spread
/// thin, small enough that a batch of assets stays a few tens of MB.
const BATCH: usize = 20_000;

/// The synthetic assets `range` in batches, made on a thread of their own (one batch
/// ahead of the consumer) so that making them overlaps the store's writes. Batches the
/// consumer is done with go back through `used`, to be freed on this thread too.
pub(crate) fn generate(
    range: std::ops::Range<usize>,
    start_ms: i64,
    span_ms: i64,
    used: std::sync::mpsc::Receiver<Vec<Asset>>,
) -> tokio::sync::mpsc::Receiver<Vec<Asset>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    std::thread::spawn(move || {
        let mut rng = StdRng::seed_from_u64(42);
        let mut batch = Vec::with_capacity(BATCH);
        for i in range {
            batch.push(synthetic(i, &mut rng, start_ms, span_ms));
            if batch.len() == BATCH {
                if tx
                    .blocking_send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                    .is_err()
                {
                    return;
                }
                // Freed before the next batch is made, whose strings then reuse the memory
                // (freed on another thread, the load's peak memory was 20-30 MB higher).
                used.try_iter().for_each(drop);
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(batch);
        }
    });
    rx
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

/// A memory figure of this process from /proc (Linux), in MiB.
fn status_mb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

pub async fn search(args: SearchBenchArgs) -> anyhow::Result<Value> {
    let tmp = tempdir_path();
    let dir = args.data_dir.clone().unwrap_or_else(|| tmp.clone());
    let mut config = Config::with_data_dir(dir.clone());
    config.workers = 0;
    // MEDIADB_DATABASE_URL=postgres://... benchmarks the scale-out store instead.
    config.database_url = std::env::var("MEDIADB_DATABASE_URL").ok().filter(|u| !u.is_empty());
    let store_name = if config.database_url.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    config.admin_password = Some(crate::auth::random_password());
    let state = AppState::open(config).await?;
    let store = state.store.clone();
    let catalog = "assets";

    let now = chrono::Utc::now().timestamp_millis();
    let span = 10 * 365 * 86_400_000i64;
    let start = now - span;
    let existing = store.count_assets(catalog, Scope::Live).await? as usize;
    let load_started = Instant::now();
    // Offline: nothing searches while the catalog loads. A catalog already loaded (a
    // rerun on the same database or directory) keeps its indexes as they are.
    let loading = existing < args.assets;
    if loading {
        store.bulk_load_begin().await?;
    }
    let progress = crate::progress::Progress::on_stderr("loaded", args.assets.saturating_sub(existing) as u64);
    // The next batch is made on a thread of its own while the store writes this one.
    // Freeing a batch (a quarter of a million strings) is no work for the loading thread
    // either: it goes back to the generating thread.
    let (used, returned) = std::sync::mpsc::channel();
    let mut batches = generate(existing..args.assets, start, span, returned);
    while let Some(batch) = batches.recv().await {
        store.insert_assets_bulk(catalog, &batch).await?;
        progress.add(batch.len() as u64);
        // Fails only once the generating thread is gone: the batch is then freed here.
        let _ = used.send(batch);
    }
    progress.finish();
    let insert_seconds = load_started.elapsed().as_secs_f64();
    if loading {
        store.bulk_load_end().await?;
    }
    let load_seconds = load_started.elapsed().as_secs_f64();
    eprintln!(
        "loaded {} assets in {load_seconds:.1} s ({:.1} s building indexes and statistics)",
        args.assets,
        load_seconds - insert_seconds
    );

    // The queries' own random choices (the load's are made by `generate`).
    let mut rng = StdRng::seed_from_u64(43);
    let year_ago = dates::format_emdb(chrono::Utc::now() - chrono::Duration::days(365));
    let parse = |body: Value| -> anyhow::Result<SearchRequest> {
        Ok(query::parse_search(
            body.as_object().ok_or_else(|| anyhow::anyhow!("body"))?,
            "asset",
            &field_info,
        )?)
    };
    type Shape = (&'static str, Box<dyn Fn(&mut StdRng) -> Value + Send + Sync>, bool);
    let shapes: Vec<Shape> = vec![
        (
            "all_top20_by_date",
            Box::new(
                |_| json!({"hitsperpage":"20","sortby":"assetaddeddateDown","query":{"terms":[{"field":"id","operation":"matches","value":"*"}]}}),
            ),
            false,
        ),
        (
            "keyword_matches",
            Box::new(
                |r| json!({"hitsperpage":"20","query":{"terms":[{"field":"keywords","operation":"matches","value":keyword(r.gen_range(0..300))}]}}),
            ),
            false,
        ),
        (
            "freeform_word",
            Box::new(
                |r| json!({"hitsperpage":"20","query":{"terms":[{"field":"description","operation":"freeform","value":WORDS[r.gen_range(0..WORDS.len())]}]}}),
            ),
            false,
        ),
        (
            "orsgroup_3_keywords",
            Box::new(
                |r| json!({"hitsperpage":"20","query":{"terms":[{"field":"keywords","operation":"orsgroup","values":[keyword(r.gen_range(0..KEYWORDS)),keyword(r.gen_range(0..KEYWORDS)),keyword(r.gen_range(0..KEYWORDS))]}]}}),
            ),
            false,
        ),
        (
            "betweendates_1_year",
            Box::new(
                move |_| json!({"hitsperpage":"20","query":{"terms":[{"field":"assetaddeddate","operation":"betweendates","after":&year_ago[..10],"before":&dates::now_emdb()[..10]}]}}),
            ),
            false,
        ),
        (
            "all_top20_by_date_with_facets",
            Box::new(
                |_| json!({"hitsperpage":"20","sortby":"assetaddeddateDown","showfilters":"true","query":{"terms":[{"field":"id","operation":"matches","value":"*"}]}}),
            ),
            true,
        ),
        (
            "keyword_with_facets",
            Box::new(
                |r| json!({"hitsperpage":"20","showfilters":"true","query":{"terms":[{"field":"keywords","operation":"matches","value":keyword(r.gen_range(0..300))}]}}),
            ),
            true,
        ),
    ];
    let facet_fields = [
        "assettype",
        "fileformat",
        "keywords",
        "category-exact",
        "editstatus",
        "owner",
    ];
    let mut results = Map::new();
    if let Some(unknown) = args.shapes.iter().find(|s| !shapes.iter().any(|(name, ..)| name == s)) {
        let known: Vec<_> = shapes.iter().map(|(name, ..)| *name).collect();
        anyhow::bail!("no query shape \"{unknown}\"; the shapes: {}", known.join(", "));
    }
    let measured = if args.shapes.is_empty() {
        shapes.len()
    } else {
        args.shapes.len()
    };
    let searching = crate::progress::Progress::on_stderr("searches", (measured * args.runs) as u64);
    for (name, make, facets) in &shapes {
        if !args.shapes.is_empty() && !args.shapes.iter().any(|s| s == name) {
            continue;
        }
        searching.message(name);
        for _ in 0..args.warmup {
            let req = parse(make(&mut rng))?;
            store.search_assets(catalog, &req, Scope::Live).await?;
            if *facets {
                store.facet_counts(catalog, &req, &facet_fields, 50).await?;
            }
        }
        let mut times = Vec::with_capacity(args.runs);
        let mut hits = 0u64;
        for _ in 0..args.runs {
            let req = parse(make(&mut rng))?;
            let t = Instant::now();
            let page = store.search_assets(catalog, &req, Scope::Live).await?;
            if *facets {
                store.facet_counts(catalog, &req, &facet_fields, 50).await?;
            }
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            hits += page.total;
            searching.add(1);
        }
        times.sort_by(|a, b| a.total_cmp(b));
        results.insert(
            name.to_string(),
            json!({
                "p50_ms": (percentile(&times, 0.5) * 1000.0).round() / 1000.0,
                "p99_ms": (percentile(&times, 0.99) * 1000.0).round() / 1000.0,
                "mean_hits": hits / args.runs.max(1) as u64
            }),
        );
    }
    searching.finish();
    let out = json!({
        "assets": args.assets,
        "load_seconds": (load_seconds * 10.0).round() / 10.0,
        "index_build_seconds": ((load_seconds - insert_seconds) * 10.0).round() / 10.0,
        "runs_per_shape": args.runs,
        "warmup_runs_per_shape": args.warmup,
        "shapes": results,
        "peak_rss_mb": (peak_rss_mb() * 10.0).round() / 10.0,
        // What the process holds while answering (the peak includes the load).
        "rss_after_queries_mb": (status_mb("VmRSS:") * 10.0).round() / 10.0,
        "store": store_name,
    });
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    Ok(out)
}

pub(crate) fn tempdir_path() -> PathBuf {
    let r: u64 = rand::thread_rng().gen();
    std::env::temp_dir().join(format!("mediadb-bench-{r:016x}"))
}
