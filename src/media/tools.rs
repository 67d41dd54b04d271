//! Optional external programs: poppler's `pdftoppm` (first page of a PDF), `ffmpeg`/`ffprobe`
//! (a video's poster frame and probe data), LibreOffice's `soffice` (office documents to PDF),
//! libheif's `heif-convert` (HEIC/HEIF/AVIF stills) and librsvg's `rsvg-convert` (SVG). Each runs with a fixed argument list,
//! absolute input paths (so a name can never be read as an option), no stdin, in its own
//! process group, and a timeout after which the whole group is killed (LibreOffice's launcher
//! starts the real program as a child). A missing program is [`MediaError::ToolMissing`], so
//! the caller can mark the asset `previewstatus=mime` instead of failing it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::probe::MediaInfo;
use super::MediaError;

/// How long one external run may take.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(120);
/// Output kept from a tool (ffprobe JSON, error text).
const MAX_OUTPUT: u64 = 4 << 20;

/// A program the library may run, and the Debian package that provides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Pdftoppm,
    Ffmpeg,
    Ffprobe,
    Soffice,
    HeifConvert,
    RsvgConvert,
    Exiftool,
}

impl Tool {
    pub fn program(self) -> &'static str {
        match self {
            Tool::Pdftoppm => "pdftoppm",
            Tool::Ffmpeg => "ffmpeg",
            Tool::Ffprobe => "ffprobe",
            Tool::Soffice => "soffice",
            Tool::HeifConvert => "heif-convert",
            Tool::RsvgConvert => "rsvg-convert",
            Tool::Exiftool => "exiftool",
        }
    }

    pub fn package(self) -> &'static str {
        match self {
            Tool::Pdftoppm => "poppler-utils",
            Tool::Ffmpeg | Tool::Ffprobe => "ffmpeg",
            Tool::Soffice => "libreoffice-writer-nogui",
            Tool::HeifConvert => "libheif-examples",
            Tool::RsvgConvert => "librsvg2-bin",
            Tool::Exiftool => "libimage-exiftool-perl",
        }
    }

    /// The program's path on `PATH`, if it is installed.
    pub fn find(self) -> Option<PathBuf> {
        which(self.program())
    }

    pub(crate) fn require(self) -> Result<PathBuf, MediaError> {
        self.find().ok_or(MediaError::ToolMissing {
            tool: self.program(),
            package: self.package(),
        })
    }
}

/// Looks `name` up on `PATH` like `which`: the first executable regular file.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// A file removed on drop unless [`TempFile::forget`] is called (e.g. after renaming it).
pub(crate) struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl TempFile {
    pub(crate) fn new(dir: &Path, ext: &str) -> TempFile {
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = dir.join(format!(".mediadb-{}-{n}-{nanos}.{ext}", std::process::id()));
        TempFile { path, keep: false }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn forget(mut self) {
        self.keep = true;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Standard output of a finished run.
#[derive(Debug)]
struct Output {
    stdout: Vec<u8>,
}

/// Runs `tool` with `args`, killing it after `timeout`. Output is read on threads so a chatty
/// program cannot block on a full pipe; what is kept of it is bounded.
fn run(tool: Tool, args: &[&std::ffi::OsStr], timeout: Duration) -> Result<Output, MediaError> {
    let program = tool.require()?;
    let failed = |reason: String| MediaError::ToolFailed {
        tool: tool.program(),
        reason,
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    own_process_group(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| failed(format!("cannot start: {e}")))?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.by_ref().take(MAX_OUTPUT).read_to_end(&mut kept);
                // Keep reading (and discarding) so the child never blocks on a full pipe.
                let _ = std::io::copy(&mut p, &mut std::io::sink());
            }
            kept
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > timeout => {
                kill_group(&mut child);
                return Err(failed(format!(
                    "timed out after {} s and was stopped",
                    timeout.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(failed(format!("cannot wait: {e}"))),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        let text = String::from_utf8_lossy(&stderr);
        let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        return Err(failed(format!("{status}: {last}")));
    }
    Ok(Output { stdout })
}

/// Starts the program as the leader of a new process group, so that a timeout can stop it
/// together with whatever it started.
pub(crate) fn own_process_group(cmd: &mut Command) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
}

/// Kills a child started with [`own_process_group`] and everything in its group, and reaps it.
pub(crate) fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group the child leads;
        // it touches no memory of ours.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn absolute(p: &Path) -> Result<PathBuf, MediaError> {
    std::path::absolute(p).map_err(|e| MediaError::io("resolve", p, e))
}

/// Renders the first page of a PDF to PNG at `output`, its longer side `size` pixels.
pub fn pdf_first_page(input: &Path, output: &Path, size: u32) -> Result<(), MediaError> {
    pdf_first_page_with_timeout(input, output, size, TOOL_TIMEOUT)
}

pub fn pdf_first_page_with_timeout(
    input: &Path,
    output: &Path,
    size: u32,
    timeout: Duration,
) -> Result<(), MediaError> {
    let input = absolute(input)?;
    // pdftoppm adds the extension itself: give it the path without one.
    let stem = absolute(&output.with_extension(""))?;
    let size = size.clamp(16, 10_000).to_string();
    let args: Vec<&std::ffi::OsStr> = vec![
        "-png".as_ref(),
        "-f".as_ref(),
        "1".as_ref(),
        "-l".as_ref(),
        "1".as_ref(),
        "-singlefile".as_ref(),
        "-scale-to".as_ref(),
        size.as_ref(),
        input.as_os_str(),
        stem.as_os_str(),
    ];
    run(Tool::Pdftoppm, &args, timeout)?;
    let produced = stem.with_extension("png");
    if produced != output {
        std::fs::rename(&produced, output).map_err(|e| MediaError::io("rename", &produced, e))?;
    }
    Ok(())
}

/// Writes a poster frame of a video as PNG at `output`: one second in (or the first frame of a
/// shorter clip), as EnterMediaDB's `previewffmpegthumb` does.
pub fn video_poster(input: &Path, output: &Path) -> Result<(), MediaError> {
    let input = absolute(input)?;
    let output = absolute(output)?;
    let at = match super::probe::probe(&input) {
        Ok(MediaInfo { duration: Some(d), .. }) if d < 2.0 => "0",
        _ => "1",
    };
    let args: Vec<&std::ffi::OsStr> = vec![
        "-hide_banner".as_ref(),
        "-loglevel".as_ref(),
        "error".as_ref(),
        "-nostdin".as_ref(),
        "-y".as_ref(),
        "-ss".as_ref(),
        at.as_ref(),
        "-i".as_ref(),
        input.as_os_str(),
        "-frames:v".as_ref(),
        "1".as_ref(),
        "-an".as_ref(),
        "-sn".as_ref(),
        "-f".as_ref(),
        "image2".as_ref(),
        "-c:v".as_ref(),
        "png".as_ref(),
        output.as_os_str(),
    ];
    run(Tool::Ffmpeg, &args, TOOL_TIMEOUT)?;
    if !output.is_file() {
        return Err(MediaError::ToolFailed {
            tool: "ffmpeg",
            reason: "the video has no frame to extract".into(),
        });
    }
    Ok(())
}

/// Converts an office document (Word, Excel, PowerPoint, OpenDocument, RTF) to PDF with
/// LibreOffice at `output`. LibreOffice gets a private, throw-away profile directory (so
/// concurrent conversions never share or lock one, and nothing is written to `$HOME`).
pub fn office_to_pdf(input: &Path, output: &Path) -> Result<(), MediaError> {
    office_to_pdf_with_timeout(input, output, TOOL_TIMEOUT)
}

pub fn office_to_pdf_with_timeout(input: &Path, output: &Path, timeout: Duration) -> Result<(), MediaError> {
    let input = absolute(input)?;
    let output = absolute(output)?;
    let parent = output.parent().unwrap_or(Path::new("/"));
    let work = TempDir::new(parent, "office")?;
    let profile = work.0.join("profile");
    let outdir = work.0.join("out");
    let profile_url = format!("-env:UserInstallation=file://{}", profile.display());
    let args: Vec<&std::ffi::OsStr> = vec![
        profile_url.as_ref(),
        "--headless".as_ref(),
        "--invisible".as_ref(),
        "--norestore".as_ref(),
        "--nologo".as_ref(),
        "--nodefault".as_ref(),
        "--nolockcheck".as_ref(),
        "--convert-to".as_ref(),
        "pdf".as_ref(),
        "--outdir".as_ref(),
        outdir.as_os_str(),
        input.as_os_str(),
    ];
    run(Tool::Soffice, &args, timeout)?;
    // LibreOffice names the result after the input; it exits 0 even when it could not
    // read the document, so the file's presence is the real status.
    let produced = std::fs::read_dir(&outdir)
        .ok()
        .and_then(|mut d| d.find_map(|e| e.ok().map(|e| e.path())))
        .filter(|p| p.extension().is_some_and(|e| e == "pdf"))
        .ok_or_else(|| MediaError::ToolFailed {
            tool: "soffice",
            reason: "LibreOffice could not read the document (no PDF was written)".into(),
        })?;
    std::fs::rename(&produced, &output).map_err(|e| MediaError::io("rename", &produced, e))?;
    Ok(())
}

/// Decodes the primary image of a HEIC/HEIF/AVIF file to a high-quality JPEG at `output`
/// (libheif's `heif-convert`); the result then goes through the ordinary pipeline.
pub fn heif_to_jpeg(input: &Path, output: &Path) -> Result<(), MediaError> {
    let input = absolute(input)?;
    let output = absolute(output)?;
    let args: Vec<&std::ffi::OsStr> = vec!["-q".as_ref(), "95".as_ref(), input.as_os_str(), output.as_os_str()];
    run(Tool::HeifConvert, &args, TOOL_TIMEOUT)?;
    if !output.is_file() {
        return Err(MediaError::ToolFailed {
            tool: "heif-convert",
            reason: "no image was written".into(),
        });
    }
    Ok(())
}

/// Draws an SVG as a PNG at `output`, fitted into a `size` x `size` box: a vector image is
/// drawn at the size it will be shown, never scaled up from a small bitmap. librsvg loads
/// the files an SVG references only from the SVG's own directory and below, so the SVG is
/// copied into a directory of its own first: a hostile SVG cannot draw another file of
/// the server (another asset's original) into its preview.
pub fn svg_to_png(input: &Path, output: &Path, size: u32) -> Result<(), MediaError> {
    let output = absolute(output)?;
    let parent = output.parent().unwrap_or(Path::new("."));
    let alone = TempDir::new(parent, "svg")?;
    let svg = alone.0.join("image.svg");
    std::fs::copy(input, &svg).map_err(|e| MediaError::io("copy", input, e))?;
    let size = size.clamp(16, 10_000).to_string();
    let args: Vec<&std::ffi::OsStr> = vec![
        "--width".as_ref(),
        size.as_ref(),
        "--height".as_ref(),
        size.as_ref(),
        "--keep-aspect-ratio".as_ref(),
        "--format".as_ref(),
        "png".as_ref(),
        "--output".as_ref(),
        output.as_os_str(),
        svg.as_os_str(),
    ];
    run(Tool::RsvgConvert, &args, TOOL_TIMEOUT).map_err(|e| match e {
        // librsvg refuses what it cannot parse or draw in time: the file's fault, so the
        // asset is marked (`previewstatus` 3) instead of its import job failing.
        MediaError::ToolFailed { reason, .. } => MediaError::Decode(format!("the SVG cannot be drawn: {reason}")),
        e => e,
    })?;
    if !output.is_file() {
        return Err(MediaError::ToolFailed {
            tool: "rsvg-convert",
            reason: "no image was written".into(),
        });
    }
    Ok(())
}

/// A directory removed with its contents on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(parent: &Path, tag: &str) -> Result<TempDir, MediaError> {
        let t = TempFile::new(parent, tag);
        let path = t.path().to_path_buf();
        t.forget();
        std::fs::create_dir_all(&path).map_err(|e| MediaError::io("create", &path, e))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Probe data of any audio or video file ffprobe reads (AVI, MKV, MP3, ...).
pub fn ffprobe(input: &Path) -> Result<MediaInfo, MediaError> {
    let input = absolute(input)?;
    let args: Vec<&std::ffi::OsStr> = vec![
        "-v".as_ref(),
        "error".as_ref(),
        "-print_format".as_ref(),
        "json".as_ref(),
        "-show_format".as_ref(),
        "-show_streams".as_ref(),
        input.as_os_str(),
    ];
    let out = run(Tool::Ffprobe, &args, TOOL_TIMEOUT)?;
    parse_ffprobe(&out.stdout)
}

/// Reads `ffprobe -print_format json -show_format -show_streams` output.
pub fn parse_ffprobe(json: &[u8]) -> Result<MediaInfo, MediaError> {
    let v: serde_json::Value = serde_json::from_slice(json).map_err(|e| MediaError::ToolFailed {
        tool: "ffprobe",
        reason: format!("unreadable output: {e}"),
    })?;
    let mut info = MediaInfo::default();
    let num = |v: &serde_json::Value| -> Option<f64> {
        match v {
            serde_json::Value::String(s) => s.parse().ok(),
            serde_json::Value::Number(n) => n.as_f64(),
            _ => None,
        }
    };
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    for s in &streams {
        match s["codec_type"].as_str() {
            Some("video") if info.video_codec.is_none() => {
                // Cover art in audio files is a one-frame "video" stream; it is not the video.
                if s["disposition"]["attached_pic"].as_i64() == Some(1) {
                    continue;
                }
                info.video_codec = s["codec_name"].as_str().map(str::to_string);
                info.width = s["width"].as_u64().and_then(|v| u32::try_from(v).ok());
                info.height = s["height"].as_u64().and_then(|v| u32::try_from(v).ok());
                let rate = s["avg_frame_rate"].as_str().or(s["r_frame_rate"].as_str());
                info.frame_rate = rate.and_then(|r| {
                    let (a, b) = r.split_once('/')?;
                    let (a, b): (f64, f64) = (a.parse().ok()?, b.parse().ok()?);
                    (b > 0.0 && a > 0.0).then(|| a / b)
                });
            }
            Some("audio") if info.audio_codec.is_none() => {
                info.audio_codec = s["codec_name"].as_str().map(str::to_string);
            }
            _ => {}
        }
    }
    info.duration = num(&v["format"]["duration"]).filter(|d| d.is_finite() && *d >= 0.0);
    info.creation_date = v["format"]["tags"]["creation_time"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    Ok(info)
}

#[cfg(test)]
mod tests;
