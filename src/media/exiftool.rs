//! exiftool as an optional metadata reader for the formats the in-process readers do not know
//! (office documents, audio, camera raw formats that are not TIFF, ...): ONE long-lived
//! `exiftool -stay_open True -@ -` process per server, fed one request at a time, so the
//! 0.1 s Perl start is paid once, not per file.
//!
//! The client holds the process behind a lock (one request in flight; exiftool answers
//! requests in order on one pipe), reads its answers on a thread so every request has a
//! timeout, and starts a fresh process when the old one died or timed out (the killed
//! process's half-written answer can never be read as the next file's). Arguments are
//! fixed; the only variable line is the absolute path of the file, which exiftool's
//! argument file syntax reads verbatim (a path cannot start with `-`, and paths with a
//! line break are refused). Output is `-json -n` (numbers unformatted), mapped into the
//! same [`MediaInfo`] the in-process readers fill.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::Value;

use super::probe::exif::exif_date;
use super::probe::MediaInfo;
use super::tools::{kill_group, own_process_group, Tool};
use super::MediaError;

/// How long one file may take before the process is killed and restarted.
pub const EXIFTOOL_TIMEOUT: Duration = Duration::from_secs(30);
/// The most output kept for one file (a JSON object of tags).
const MAX_ANSWER: usize = 4 << 20;
/// The line exiftool prints when it has answered one `-execute`.
const READY: &str = "{ready}";

/// A running `exiftool -stay_open` process.
struct Process {
    child: Child,
    stdin: ChildStdin,
    /// Lines of its standard output, read by a thread; closed when the process ends.
    lines: Receiver<String>,
}

impl Process {
    fn start(program: &Path) -> Result<Process, MediaError> {
        let mut cmd = Command::new(program);
        cmd.args(["-stay_open", "True", "-@", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        own_process_group(&mut cmd);
        let mut child = spawn_tied_to_this_process(cmd).map_err(|e| failed(format!("cannot start: {e}")))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            kill_group(&mut child);
            return Err(failed("no pipes to the process".into()));
        };
        let (tx, lines) = mpsc::channel();
        std::thread::Builder::new()
            .name("exiftool-reader".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| failed(format!("cannot start its reader: {e}")))?;
        Ok(Process { child, stdin, lines })
    }

    /// Sends one request and collects the answer up to `{ready}`.
    fn ask(&mut self, path: &Path, timeout: Duration) -> Result<String, Ask> {
        let mut req = String::new();
        for arg in FIXED_ARGS {
            req.push_str(arg);
            req.push('\n');
        }
        req.push_str(&path.to_string_lossy());
        req.push_str("\n-execute\n");
        self.stdin
            .write_all(req.as_bytes())
            .and_then(|()| self.stdin.flush())
            .map_err(|_| Ask::Died)?;
        let deadline = Instant::now() + timeout;
        let mut out = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.trim_end() == READY => return Ok(out),
                Ok(line) => {
                    if out.len() + line.len() < MAX_ANSWER {
                        out.push_str(&line);
                        out.push('\n');
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Err(Ask::TimedOut),
                Err(RecvTimeoutError::Disconnected) => return Err(Ask::Died),
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // A polite stop first (exiftool ends at `-stay_open False`), then the group.
        let _ = self.stdin.write_all(b"-stay_open\nFalse\n");
        let _ = self.stdin.flush();
        for _ in 0..20 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        kill_group(&mut self.child);
    }
}

/// Starts `cmd` so that it dies with this process. exiftool in `-stay_open` mode does not end
/// when its input closes (it waits for more, like `tail -f`), so a server that exits without
/// stopping it would leave it behind. On Linux the child asks for SIGKILL when its parent
/// thread ends; that thread is a dedicated one that lives as long as the process (a pool
/// thread that ended would take exiftool with it).
fn spawn_tied_to_this_process(mut cmd: Command) -> std::io::Result<Child> {
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl and getppid are async-signal-safe; nothing else runs between fork
        // and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 || libc::getppid() == 1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        let _ = std::thread::Builder::new()
            .name("exiftool-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            });
        Mutex::new(tx)
    });
    let (reply, answer) = mpsc::channel();
    let sent = spawner
        .lock()
        .map_err(|_| std::io::Error::other("spawner lock poisoned"))?
        .send((cmd, reply));
    sent.map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

/// Why a request got no answer.
enum Ask {
    Died,
    TimedOut,
}

/// Per-file arguments, always the same: JSON, plain numbers, the tags a DAM maps (wire §8),
/// no slow scans to the end of the file (`-fast2`), UTF-8 file names.
const FIXED_ARGS: &[&str] = &["-json", "-n", "-fast2", "-charset", "filename=utf8"];

fn failed(reason: String) -> MediaError {
    MediaError::ToolFailed {
        tool: "exiftool",
        reason,
    }
}

/// The process shared by everything in this server process.
pub struct ExifTool {
    process: Mutex<Option<Process>>,
    timeout: Duration,
}

impl ExifTool {
    /// The shared client (the process starts on first use).
    pub fn global() -> &'static ExifTool {
        static GLOBAL: OnceLock<ExifTool> = OnceLock::new();
        GLOBAL.get_or_init(|| ExifTool::new(EXIFTOOL_TIMEOUT))
    }

    pub fn new(timeout: Duration) -> ExifTool {
        ExifTool {
            process: Mutex::new(None),
            timeout,
        }
    }

    /// Whether exiftool can be used here: `Ok` with its path, or the reason it cannot.
    pub fn status() -> Result<std::path::PathBuf, MediaError> {
        Tool::Exiftool.require()
    }

    /// Reads the metadata of `path` (blocking: call it from a blocking thread, or use
    /// [`read_async`]). A process that died is restarted once for the same request.
    pub fn read(&self, path: &Path) -> Result<MediaInfo, MediaError> {
        let path = std::path::absolute(path).map_err(|e| MediaError::io("resolve", path, e))?;
        if path.to_string_lossy().contains(['\n', '\r']) {
            return Err(MediaError::Unsupported("a file path with a line break".into()));
        }
        let program = Tool::Exiftool.require()?;
        let mut guard = self.process.lock().unwrap_or_else(|p| p.into_inner());
        for attempt in 0..2 {
            if guard.is_none() {
                *guard = Some(Process::start(&program)?);
            }
            let Some(p) = guard.as_mut() else { continue };
            match p.ask(&path, self.timeout) {
                Ok(json) => return parse_json(json.as_bytes()),
                Err(Ask::TimedOut) => {
                    // Dropping kills it; the next request starts a new one.
                    *guard = None;
                    return Err(failed(format!(
                        "no answer within {} s; the process was restarted",
                        self.timeout.as_secs()
                    )));
                }
                Err(Ask::Died) => {
                    *guard = None;
                    if attempt == 1 {
                        return Err(failed("the process ended while reading this file".into()));
                    }
                }
            }
        }
        Err(failed("the process could not be started".into()))
    }

    /// The process id of the running process, if one runs (for tests and diagnostics).
    pub fn pid(&self) -> Option<u32> {
        let guard = self.process.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map(|p| p.child.id())
    }
}

/// [`ExifTool::read`] of the shared client, on tokio's blocking pool.
pub async fn read_async(path: std::path::PathBuf) -> Result<MediaInfo, MediaError> {
    tokio::task::spawn_blocking(move || ExifTool::global().read(&path))
        .await
        .map_err(|e| failed(format!("the reader thread failed: {e}")))?
}

/// Maps `exiftool -json -n` output (an array of one object) into [`MediaInfo`], with the tag
/// precedence of EnterMediaDB's field catalog (wire §8): XMP/document tags before EXIF/IPTC.
pub fn parse_json(json: &[u8]) -> Result<MediaInfo, MediaError> {
    let v: Value = serde_json::from_slice(json).map_err(|e| failed(format!("unreadable output: {e}")))?;
    let tags = v
        .as_array()
        .and_then(|a| a.first())
        .and_then(Value::as_object)
        .ok_or_else(|| failed("no answer for the file".into()))?;
    let text = |names: &[&str]| -> Option<String> {
        names.iter().find_map(|n| match tags.get(*n)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            Value::Array(a) => {
                let parts: Vec<String> = a.iter().filter_map(plain).collect();
                (!parts.is_empty()).then(|| parts.join(", "))
            }
            _ => None,
        })
    };
    let num = |names: &[&str]| -> Option<f64> {
        names.iter().find_map(|n| match tags.get(*n)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
    };
    let dim = |names: &[&str]| num(names).filter(|v| *v >= 1.0 && *v < 1e9).map(|v| v.round() as u32);
    let mut info = MediaInfo {
        format: text(&["FileTypeExtension"]).map(|s| s.to_ascii_lowercase()),
        width: dim(&["ImageWidth", "ExifImageWidth", "SourceImageWidth"]),
        height: dim(&["ImageHeight", "ExifImageHeight", "SourceImageHeight"]),
        orientation: num(&["Orientation"])
            .filter(|v| (1.0..=8.0).contains(v))
            .map(|v| v as u16),
        creation_date: [
            "DateTimeOriginal",
            "CreateDate",
            "Created",
            "MediaCreateDate",
            "DateCreated",
        ]
        .iter()
        .find_map(|n| tags.get(*n).and_then(Value::as_str).and_then(date)),
        title: text(&["Title", "ObjectName"]),
        headline: text(&["Headline"]),
        caption: text(&["Description", "ImageDescription", "Caption-Abstract", "Comment"]),
        creator: text(&["Creator", "Artist", "Author", "By-line"]),
        copyright: text(&["Rights", "CopyrightNotice", "Copyright"]),
        credit: text(&["Credit"]),
        city: text(&["City"]),
        state: text(&["State", "Province-State"]),
        country: text(&["Country", "Country-PrimaryLocationName"]),
        camera_make: text(&["Make"]),
        camera_model: text(&["Model"]),
        pages: num(&["Pages", "PageCount", "Slides"])
            .filter(|v| *v >= 1.0 && *v < 1e7)
            .map(|v| v as u32),
        duration: num(&["Duration"]).filter(|v| v.is_finite() && *v >= 0.0),
        frame_rate: num(&["VideoFrameRate"]).filter(|v| v.is_finite() && *v > 0.0),
        video_codec: text(&["CompressorID", "VideoCodec"]),
        audio_codec: text(&["AudioFormat", "AudioCodec"]),
        ..MediaInfo::default()
    };
    if let (Some(lat), Some(lon)) = (num(&["GPSLatitude"]), num(&["GPSLongitude"])) {
        if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) {
            info.gps = Some((lat, lon));
        }
    }
    // Keywords: XMP dc:subject and IPTC Keywords, as a list or a comma-separated text.
    for name in ["Subject", "Keywords"] {
        let words: Vec<String> = match tags.get(name) {
            Some(Value::Array(a)) => a.iter().filter_map(plain).collect(),
            Some(Value::String(s)) => s.split([',', ';']).map(|w| w.trim().to_string()).collect(),
            _ => Vec::new(),
        };
        for w in words {
            if !w.is_empty() && !info.keywords.contains(&w) {
                info.keywords.push(w);
            }
        }
    }
    info.colorspace = match text(&["ColorSpaceData", "ColorMode", "ColorComponents"]).as_deref() {
        Some("RGB" | "3") => Some("RGB".into()),
        Some("CMYK" | "4") => Some("CMYK".into()),
        Some("GRAY" | "Grayscale" | "1") => Some("Grayscale".into()),
        Some("Lab") => Some("Lab".into()),
        _ => None,
    };
    Ok(info)
}

fn plain(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// exiftool's dates: `2014:07:03 05:40:37`, with an optional `Z` or `+02:00`, or sub-seconds.
fn date(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    let (body, offset) = if let Some(b) = s.strip_suffix('Z') {
        (b, FixedOffset::east_opt(0))
    } else if s.len() > 19 && matches!(s.as_bytes()[s.len() - 6], b'+' | b'-') {
        let (b, o) = s.split_at(s.len() - 6);
        (b, super::probe::exif::parse_offset(o))
    } else {
        (s, None)
    };
    let body = body.split('.').next().unwrap_or(body);
    exif_date(body, offset)
}

#[cfg(test)]
mod tests;
