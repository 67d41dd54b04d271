//! The benchmark's converter: `mediadb::media::convert_cli` on one file, as `mediadb
//! convert` runs it, plus `--all` for every preset from one decode (scripts/bench-media.sh).
//!
//! Usage: `convert INPUT --preset NAME --output OUT`; `convert INPUT --all OUTDIR` for every
//! standard preset from one decode; `convert INPUT --probe N` to time N metadata probes.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from)
    };
    let Some(input) = args.first().filter(|a| !a.starts_with("--")).map(PathBuf::from) else {
        eprintln!("usage: convert INPUT --preset NAME --output OUT | convert INPUT --all OUTDIR");
        return ExitCode::from(2);
    };
    if let Some(n) = value("--probe") {
        let n: u32 = n.to_string_lossy().parse().unwrap_or(1000).max(1);
        let start = std::time::Instant::now();
        for _ in 0..n {
            if let Err(e) = mediadb::media::probe(&input) {
                eprintln!("probe: {e}");
                return ExitCode::FAILURE;
            }
        }
        println!(
            "metadata probe: {:.1} us per file (mean of {n})",
            start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
        );
        return ExitCode::SUCCESS;
    }
    let result = if let Some(dir) = value("--all") {
        let presets = mediadb::media::standard_presets();
        mediadb::media::render_presets(&input, &presets, &dir, &Default::default()).map(|out| {
            for r in out.renditions {
                println!("{} {}x{} {} bytes", r.path.display(), r.width, r.height, r.bytes);
            }
        })
    } else {
        let (Some(preset), Some(output)) = (value("--preset"), value("--output")) else {
            eprintln!("usage: convert INPUT --preset NAME --output OUT");
            return ExitCode::from(2);
        };
        mediadb::media::convert_cli(&input, &preset.to_string_lossy(), &output).map(|r| {
            println!("{} {}x{} {} bytes", r.path.display(), r.width, r.height, r.bytes);
        })
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("convert: {e}");
            ExitCode::FAILURE
        }
    }
}
