//! `mediadb convert INPUT --preset NAME --output OUT`: one preset of one file through the same
//! pipeline as the import (for operators, and for comparing against other tools).

use std::path::Path;

use super::render::{find_preset, render_presets, standard_presets, OutputFormat, RenderOptions, Rendition};
use super::MediaError;

/// Converts `input` with the standard preset `preset` (an id such as `thumbimage`, or an output
/// name such as `image200x200.jpg`) into the file `output`. An `output` ending in `.webp` or
/// `.jpg`/`.jpeg` chooses that encoding; any other name keeps the preset's.
pub fn convert_cli(input: &Path, preset: &str, output: &Path) -> Result<Rendition, MediaError> {
    convert_with(input, preset, output, &RenderOptions::default())
}

/// [`convert_cli`] with explicit options (pixel limit, quality, rotation). The preset `all`
/// writes every standard preset into the directory `output`, from one decode, exactly as the
/// import does, and answers the largest rendition.
pub fn convert_with(input: &Path, preset: &str, output: &Path, opts: &RenderOptions) -> Result<Rendition, MediaError> {
    let presets = standard_presets();
    if preset == "all" {
        let out = render_presets(input, &presets, output, opts)?;
        return out
            .renditions
            .into_iter()
            .max_by_key(|r| u64::from(r.width) * u64::from(r.height))
            .ok_or_else(|| MediaError::Decode("internal: no rendition written".into()));
    }
    let mut p = find_preset(&presets, preset)
        .cloned()
        .ok_or_else(|| MediaError::UnknownPreset(preset.to_string()))?;
    let file_name = output
        .file_name()
        .ok_or_else(|| MediaError::io("write", output, std::io::ErrorKind::InvalidInput.into()))?;
    match output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("webp") => p.format = OutputFormat::Webp,
        Some("jpg" | "jpeg") => p.format = OutputFormat::Jpeg,
        _ => {}
    }
    p.output_file = file_name.to_string_lossy().into_owned();
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut out = render_presets(input, std::slice::from_ref(&p), dir, opts)?;
    out.renditions
        .pop()
        .ok_or_else(|| MediaError::Decode("internal: no rendition written".into()))
}

/// The names `--preset` accepts, for the command's help text.
pub fn preset_names() -> Vec<String> {
    let mut names: Vec<String> = standard_presets().into_iter().map(|p| p.id).collect();
    names.push("all".into());
    names
}
