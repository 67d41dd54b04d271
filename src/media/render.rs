//! Renditions: the preset table (wire §7.2) and [`render_presets`], which decodes an image once
//! and writes every preset from that one decode, EXIF orientation (and an optional extra
//! rotation) applied, sizes fitted inside each box without upscaling.

use std::cmp::Reverse;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use fast_image_resize as fr;

use super::decode;
use super::sniff::{sniff_file, Format};
use super::tools;
use super::MediaError;

/// Output encodings of a preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Jpeg,
    Webp,
}

impl OutputFormat {
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Webp => "webp",
        }
    }
}

/// One conversion preset (a row of EnterMediaDB's `convertpreset` table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    /// `largeimage`, `thumbimage`, ...
    pub id: String,
    /// Display name, e.g. `Image 200x200 JPG`.
    pub name: String,
    /// `generatedoutputfile`, e.g. `image200x200.jpg`.
    pub output_file: String,
    /// The box: the rendition fits inside it (or, with `crop`, fills it).
    pub width: u32,
    pub height: u32,
    /// Fill the box exactly, cutting the overflow evenly from both sides.
    pub crop: bool,
    pub format: OutputFormat,
}

impl Preset {
    pub fn new(id: &str, width: u32, height: u32, crop: bool, format: OutputFormat) -> Preset {
        let ext = format.extension();
        let suffix = if crop { "cropped" } else { "" };
        Preset {
            id: id.to_string(),
            name: format!(
                "Image {width}x{height}{} {}",
                if crop { " Cropped" } else { "" },
                ext.to_uppercase()
            ),
            output_file: format!("image{width}x{height}{suffix}.{ext}"),
            width,
            height,
            crop,
            format,
        }
    }
}

/// The on-import presets of EnterMediaDB's stock catalog (wire §7.2), JPEG and WebP twins.
pub fn standard_presets() -> Vec<Preset> {
    use OutputFormat::{Jpeg, Webp};
    vec![
        Preset::new("largeimage", 3000, 3000, false, Jpeg),
        Preset::new("mediumimage", 550, 550, false, Jpeg),
        Preset::new("thumbimage", 200, 200, false, Jpeg),
        Preset::new("imagecrop", 110, 62, true, Jpeg),
        Preset::new("webplargeimage", 3000, 3000, false, Webp),
        Preset::new("webpmediumimage", 550, 550, false, Webp),
        Preset::new("webpthumbimage", 200, 200, false, Webp),
        Preset::new("webpimagecrop", 110, 62, true, Webp),
    ]
}

/// A preset by id (`thumbimage`) or output file name (`image200x200.jpg`).
pub fn find_preset<'a>(presets: &'a [Preset], name: &str) -> Option<&'a Preset> {
    presets.iter().find(|p| p.id == name || p.output_file == name)
}

/// A clockwise rotation applied after the EXIF orientation (the `rotateasset` endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rotation {
    #[default]
    None,
    Cw90,
    Cw180,
    Cw270,
}

impl Rotation {
    /// 90, 180, 270 (or -90, 360, ...); `None` for angles that are not quarter turns.
    pub fn from_degrees(deg: i64) -> Option<Rotation> {
        if deg % 90 != 0 {
            return None;
        }
        Some(match deg.rem_euclid(360) {
            0 => Rotation::None,
            90 => Rotation::Cw90,
            180 => Rotation::Cw180,
            _ => Rotation::Cw270,
        })
    }

    fn swaps_axes(self) -> bool {
        matches!(self, Rotation::Cw90 | Rotation::Cw270)
    }
}

/// Tuning of [`render_presets`].
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// Images whose header announces more pixels are refused before decoding.
    pub max_pixels: u64,
    pub jpeg_quality: u8,
    pub webp_quality: f32,
    pub rotate: Rotation,
    /// Encoder threads (the big JPEG and WebP encode side by side).
    pub threads: usize,
}

/// The default pixel limit: 100 megapixels.
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            max_pixels: DEFAULT_MAX_PIXELS,
            jpeg_quality: 85,
            webp_quality: 80.0,
            rotate: Rotation::None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()).min(4),
        }
    }
}

/// One written rendition.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendition {
    pub preset_id: String,
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

/// What [`render_presets`] produced.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOutput {
    /// The image's size as shown (orientation and rotation applied): what `rotateasset` reports.
    pub width: u32,
    pub height: u32,
    pub renditions: Vec<Rendition>,
}

/// Renders `presets` of `input` into `out_dir` (as each preset's `output_file`). Images
/// (Photoshop's composite and BMP included) are decoded in-process; PDFs (first page),
/// videos (a poster frame), HEIC stills, SVG drawings and office documents go through
/// `pdftoppm`, `ffmpeg`, `heif-convert`, `rsvg-convert` and `soffice` first, and fail with
/// [`MediaError::ToolMissing`] when those are not installed.
/// Files appear atomically (written under a temporary name, then renamed).
pub fn render_presets(
    input: &Path,
    presets: &[Preset],
    out_dir: &Path,
    opts: &RenderOptions,
) -> Result<RenderOutput, MediaError> {
    let format = sniff_file(input)?;
    std::fs::create_dir_all(out_dir).map_err(|e| MediaError::io("create", out_dir, e))?;
    let largest = presets.iter().map(|p| p.width.max(p.height)).max().unwrap_or(0);
    match format {
        f if f.decodes_in_process() => render_image(input, presets, out_dir, opts),
        Format::Pdf | Format::Movie => {
            let still = tools::TempFile::new(out_dir, "png");
            if format == Format::Pdf {
                tools::pdf_first_page(input, still.path(), largest.max(1))?;
            } else {
                tools::video_poster(input, still.path())?;
            }
            render_image(still.path(), presets, out_dir, opts)
        }
        // HEIC/HEIF/AVIF: decoded by libheif's heif-convert (no pure-Rust HEVC decoder exists).
        Format::Heif => {
            let still = tools::TempFile::new(out_dir, "jpg");
            tools::heif_to_jpeg(input, still.path())?;
            render_image(still.path(), presets, out_dir, opts)
        }
        // SVG: drawn at the largest preset's size, then rendered like any image.
        Format::Svg => {
            let still = tools::TempFile::new(out_dir, "png");
            tools::svg_to_png(input, still.path(), largest.max(1))?;
            render_image(still.path(), presets, out_dir, opts)
        }
        // Office documents: LibreOffice makes a PDF, whose first page becomes the preview.
        Format::Unknown if super::sniff::sniff_office(input)?.is_some() => {
            let pdf = tools::TempFile::new(out_dir, "pdf");
            tools::office_to_pdf(input, pdf.path())?;
            let still = tools::TempFile::new(out_dir, "png");
            tools::pdf_first_page(pdf.path(), still.path(), largest.max(1))?;
            render_image(still.path(), presets, out_dir, opts)
        }
        other => Err(MediaError::Unsupported(match other.extension() {
            Some(ext) => format!("no renditions for {ext} files"),
            None => "the file's content is not a known image, video or PDF format".into(),
        })),
    }
}

/// A target size group: presets of equal box and crop share one resize.
struct Target {
    /// Size in the stored (unrotated) orientation.
    width: u32,
    height: u32,
    crop: bool,
    presets: Vec<usize>,
}

/// Size of an image `w`x`h` fitted into (or, cropping, filling) a box, never upscaled.
pub fn fitted_size(w: u32, h: u32, box_w: u32, box_h: u32, crop: bool) -> (u32, u32) {
    let (wf, hf) = (f64::from(w), f64::from(h));
    let (bw, bh) = (f64::from(box_w.max(1)), f64::from(box_h.max(1)));
    if crop {
        let s = (bw / wf).max(bh / hf).min(1.0);
        let sw = ((wf * s).round() as u32).max(1);
        let sh = ((hf * s).round() as u32).max(1);
        (box_w.max(1).min(sw), box_h.max(1).min(sh))
    } else {
        let s = (bw / wf).min(bh / hf).min(1.0);
        (((wf * s).round() as u32).max(1), ((hf * s).round() as u32).max(1))
    }
}

/// The pixel size a crop target needs before cropping (the cover scale).
fn cover_size(w: u32, h: u32, box_w: u32, box_h: u32) -> (u32, u32) {
    let s = (f64::from(box_w) / f64::from(w))
        .max(f64::from(box_h) / f64::from(h))
        .min(1.0);
    (
        ((f64::from(w) * s).ceil() as u32).max(1),
        ((f64::from(h) * s).ceil() as u32).max(1),
    )
}

/// Whether an EXIF orientation turns the image by a quarter (width and height swap).
fn orientation_swaps(o: u16) -> bool {
    matches!(o, 5..=8)
}

fn render_image(
    input: &Path,
    presets: &[Preset],
    out_dir: &Path,
    opts: &RenderOptions,
) -> Result<RenderOutput, MediaError> {
    let header = decode::header(input, opts.max_pixels)?;
    let swap = orientation_swaps(header.orientation) ^ opts.rotate.swaps_axes();
    let (full_w, full_h) = (header.width, header.height);

    // Boxes are given in display orientation; work in stored orientation.
    let mut targets: Vec<Target> = Vec::new();
    for (i, p) in presets.iter().enumerate() {
        let (bw, bh) = if swap { (p.height, p.width) } else { (p.width, p.height) };
        let (w, h) = fitted_size(full_w, full_h, bw, bh, p.crop);
        match targets
            .iter_mut()
            .find(|t| t.width == w && t.height == h && t.crop == p.crop)
        {
            Some(t) => t.presets.push(i),
            None => targets.push(Target {
                width: w,
                height: h,
                crop: p.crop,
                presets: vec![i],
            }),
        }
    }
    // The decode must be at least as large as the largest target (crop targets before cropping).
    let (mut need_w, mut need_h) = (1, 1);
    for t in &targets {
        let (w, h) = if t.crop {
            let bw = t.width;
            let bh = t.height;
            cover_size(full_w, full_h, bw, bh)
        } else {
            (t.width, t.height)
        };
        need_w = need_w.max(w);
        need_h = need_h.max(h);
    }
    let started = std::time::Instant::now();
    let decoded = decode::decode(input, &header, need_w, need_h, opts.max_pixels)?;
    // Phase timings for `MEDIADB_LOG=mediadb::media=debug mediadb convert ...`.
    tracing::debug!(
        ms = started.elapsed().as_secs_f64() * 1e3,
        "decoded {full_w}x{full_h} at {}x{}",
        decoded.width,
        decoded.height
    );
    let orientation = decoded.orientation;
    let (width, height, channels) = (decoded.width, decoded.height, decoded.channels);
    let planes = decoded.planes.map(Arc::new);
    let mut pixels = Some(decoded.pixels);

    // Resize largest first, so smaller targets can be made from a larger, already-resized image
    // (much less work than from a 24 MP decode) while that one is still at least twice as big.
    // Each finished size is handed to the encoder threads at once: the big WebP encode, the
    // slowest step, starts while the smaller sizes are still being resized.
    let mut order: Vec<usize> = (0..targets.len()).collect();
    order.sort_by_key(|&i| Reverse(u64::from(targets[i].width) * u64::from(targets[i].height)));
    let (tx, rx) = mpsc::channel::<(usize, Source)>();
    let rx = Mutex::new(rx);
    let results: Mutex<Vec<Result<Rendition, MediaError>>> = Mutex::new(Vec::new());
    let encoder = || loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => break,
        };
        let Ok((p, source)) = job else { break };
        let preset = &presets[p];
        let t = std::time::Instant::now();
        let (w, h) = source.size();
        let encoded = match &source {
            Source::Pixels(img) => encode(img, preset.format, opts),
            Source::Planes(planes) => encode_webp_planes(planes, opts.webp_quality),
        };
        drop(source);
        let r = encoded.and_then(|bytes| {
            tracing::debug!(
                ms = t.elapsed().as_secs_f64() * 1e3,
                "encoded {} {w}x{h}",
                preset.output_file,
            );
            let path = out_dir.join(&preset.output_file);
            write_atomic(&path, &bytes)?;
            Ok(Rendition {
                preset_id: preset.id.clone(),
                path,
                width: w,
                height: h,
                bytes: bytes.len() as u64,
            })
        });
        if let Ok(mut all) = results.lock() {
            all.push(r);
        }
    };
    let resized: Result<(), MediaError> = std::thread::scope(|s| {
        for _ in 1..opts.threads.max(1) {
            s.spawn(encoder);
        }
        let mut step = || -> Result<(), MediaError> {
            // Presets already queued from the decoder's YCbCr planes.
            let mut queued: Vec<usize> = Vec::new();
            if let Some(planes) = &planes {
                // The largest WebP is the longest job: when it is the decoded size, unturned, it
                // starts from the planes now, while this thread makes the RGB pixels.
                let first = order.first().map(|&i| &targets[i]);
                if let Some(t) = first.filter(|t| {
                    (t.width, t.height) == (planes.width, planes.height)
                        && !t.crop
                        && orientation <= 1
                        && opts.rotate == Rotation::None
                }) {
                    for &p in t.presets.iter().filter(|&&p| presets[p].format == OutputFormat::Webp) {
                        let _ = tx.send((p, Source::Planes(Arc::clone(planes))));
                        queued.push(p);
                    }
                }
                let t = std::time::Instant::now();
                pixels = Some(planes.to_rgb()?);
                tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, "YCbCr planes to RGB");
            }
            let src = Arc::new(Image {
                pixels: pixels.take().unwrap_or_default(),
                width,
                height,
                channels,
            });
            let mut done: Vec<Arc<Image>> = Vec::new();
            let mut resizer = fr::Resizer::new();
            for &i in &order {
                let t = &targets[i];
                let from = done
                    .iter()
                    .filter(|img| img.width >= t.width * 2 && img.height >= t.height * 2)
                    .min_by_key(|img| u64::from(img.width) * u64::from(img.height))
                    .unwrap_or(&src);
                let img = if from.width == t.width && from.height == t.height && !t.crop {
                    Arc::clone(from)
                } else {
                    Arc::new(resize(&mut resizer, from, t.width, t.height, t.crop)?)
                };
                let shown = match orient(&img, orientation, opts.rotate) {
                    Some(turned) => Arc::new(turned),
                    None => Arc::clone(&img),
                };
                // WebP encodes several times slower than JPEG: queue it first, so that the
                // slowest job of the largest size starts as early as possible.
                let mut queue: Vec<usize> = t.presets.iter().copied().filter(|p| !queued.contains(p)).collect();
                queue.sort_by_key(|&p| presets[p].format != OutputFormat::Webp);
                for p in queue {
                    // The receiver lives until the scope ends, so sending cannot fail.
                    let _ = tx.send((p, Source::Pixels(Arc::clone(&shown))));
                }
                if !t.crop {
                    done.push(img);
                }
            }
            Ok(())
        };
        let r = step();
        drop(tx);
        // This thread encodes too once resizing is over.
        encoder();
        r
    });
    resized?;
    let mut renditions = Vec::with_capacity(presets.len());
    for r in results.into_inner().unwrap_or_default() {
        renditions.push(r?);
    }
    if renditions.len() != presets.len() {
        return Err(MediaError::Decode("internal: an encoder thread failed".into()));
    }
    // Report in preset order.
    renditions.sort_by_key(|r| presets.iter().position(|p| p.id == r.preset_id));
    let (w, h) = if swap { (full_h, full_w) } else { (full_w, full_h) };
    Ok(RenderOutput {
        width: w,
        height: h,
        renditions,
    })
}

/// What an encoder thread encodes: pixels, or (for WebP) the decoder's YCbCr planes.
enum Source {
    Pixels(Arc<Image>),
    Planes(Arc<decode::Planes>),
}

impl Source {
    fn size(&self) -> (u32, u32) {
        match self {
            Source::Pixels(img) => (img.width, img.height),
            Source::Planes(p) => (p.width, p.height),
        }
    }
}

/// Owned pixels.
pub(crate) struct Image {
    pixels: Vec<u8>,
    width: u32,
    height: u32,
    channels: u8,
}

fn pixel_type(channels: u8) -> fr::PixelType {
    if channels == 4 {
        fr::PixelType::U8x4
    } else {
        fr::PixelType::U8x3
    }
}

fn resize(resizer: &mut fr::Resizer, from: &Image, width: u32, height: u32, crop: bool) -> Result<Image, MediaError> {
    let fail = |e: &dyn std::fmt::Display| MediaError::Decode(format!("resize failed: {e}"));
    let pt = pixel_type(from.channels);
    let src = fr::images::ImageRef::new(from.width, from.height, &from.pixels, pt).map_err(|e| fail(&e))?;
    let mut dst = fr::images::Image::new(width, height, pt);
    // Lanczos3 for downscaling, as libvips' thumbnailer does; alpha is premultiplied by the
    // resizer so edges of transparent images do not darken.
    let mut options = fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3));
    if crop {
        options = options.fit_into_destination(Some((0.5, 0.5)));
    }
    resizer.resize(&src, &mut dst, &options).map_err(|e| fail(&e))?;
    Ok(Image {
        pixels: dst.into_vec(),
        width,
        height,
        channels: from.channels,
    })
}

/// Applies EXIF orientation, then the extra rotation; `None` when there is nothing to turn.
fn orient(img: &Image, orientation: u16, rotate: Rotation) -> Option<Image> {
    if orientation <= 1 && rotate == Rotation::None {
        return None;
    }
    let (width, height, channels) = (img.width, img.height, img.channels);
    let mut dynimg = if channels == 4 {
        image::DynamicImage::ImageRgba8(image::RgbaImage::from_raw(width, height, img.pixels.clone())?)
    } else {
        image::DynamicImage::ImageRgb8(image::RgbImage::from_raw(width, height, img.pixels.clone())?)
    };
    if let Some(o) = image::metadata::Orientation::from_exif(orientation as u8) {
        dynimg.apply_orientation(o);
    }
    let dynimg = match rotate {
        Rotation::None => dynimg,
        Rotation::Cw90 => dynimg.rotate90(),
        Rotation::Cw180 => dynimg.rotate180(),
        Rotation::Cw270 => dynimg.rotate270(),
    };
    let (width, height) = (dynimg.width(), dynimg.height());
    let pixels = if channels == 4 {
        dynimg.into_rgba8().into_raw()
    } else {
        dynimg.into_rgb8().into_raw()
    };
    Some(Image {
        pixels,
        width,
        height,
        channels,
    })
}

/// Encodes a rendition. JPEG has no alpha: transparent images are laid on white.
fn encode(img: &Image, format: OutputFormat, opts: &RenderOptions) -> Result<Vec<u8>, MediaError> {
    if img.width == 0 || img.height == 0 {
        return Err(MediaError::Decode("internal: empty image".into()));
    }
    match format {
        OutputFormat::Jpeg => {
            let rgb;
            let pixels = if img.channels == 4 {
                rgb = flatten_on_white(&img.pixels);
                &rgb
            } else {
                &img.pixels
            };
            let (Ok(w), Ok(h)) = (u16::try_from(img.width), u16::try_from(img.height)) else {
                return Err(MediaError::Encode {
                    format: "JPEG",
                    reason: "image wider or taller than 65535 pixels".into(),
                });
            };
            let mut out = Vec::with_capacity(pixels.len() / 8);
            let enc = jpeg_encoder::Encoder::new(&mut out, opts.jpeg_quality);
            // Standard Huffman tables: jpeg-encoder's optimised tables save about 2% but some
            // decoders (zune-jpeg, which the image crate uses) read them as a flat grey image.
            enc.encode(pixels, w, h, jpeg_encoder::ColorType::Rgb)
                .map_err(|e| MediaError::Encode {
                    format: "JPEG",
                    reason: e.to_string(),
                })?;
            Ok(out)
        }
        OutputFormat::Webp => encode_webp(img, opts.webp_quality),
    }
}

/// libwebp's settings for a rendition of `width` x `height`.
fn webp_config(width: u32, height: u32, quality: f32) -> Result<libwebp_sys::WebPConfig, MediaError> {
    let mut config = libwebp_sys::WebPConfig::new().map_err(|_| webp_error("libwebp version mismatch".into()))?;
    config.quality = quality;
    // Effort (0-6): 4 for small renditions; 0 for large ones, where method 4 takes three
    // times as long for a tenth less size (measured on a 24 MP photo at 3000 px).
    let large = u64::from(width) * u64::from(height) > 1 << 20;
    config.method = if large { 0 } else { 4 };
    // Lets libwebp analyse the picture on two threads.
    config.thread_level = 1;
    Ok(config)
}

fn webp_error(reason: String) -> MediaError {
    MediaError::Encode { format: "WebP", reason }
}

/// An empty libwebp picture of `width` x `height` in YUV 4:2:0 (`use_argb = 0`), freed on drop.
struct WebpPicture(libwebp_sys::WebPPicture);

impl WebpPicture {
    fn new(width: u32, height: u32) -> Result<WebpPicture, MediaError> {
        if width == 0 || height == 0 {
            return Err(MediaError::Decode("internal: empty image".into()));
        }
        if width > 16383 || height > 16383 {
            return Err(webp_error("WebP is limited to 16383x16383 pixels".into()));
        }
        let mut picture = libwebp_sys::WebPPicture::new().map_err(|_| webp_error("libwebp version mismatch".into()))?;
        picture.use_argb = 0;
        picture.width = width as i32;
        picture.height = height as i32;
        Ok(WebpPicture(picture))
    }

    /// Encodes the imported picture.
    fn encode(mut self, config: &libwebp_sys::WebPConfig) -> Result<Vec<u8>, MediaError> {
        use libwebp_sys as sys;
        /// Frees the writer's buffer on every path.
        struct Writer(sys::WebPMemoryWriter);
        impl Drop for Writer {
            fn drop(&mut self) {
                // SAFETY: initialised by WebPMemoryWriterInit; clearing an empty writer is allowed.
                unsafe { sys::WebPMemoryWriterClear(&mut self.0) };
            }
        }
        // SAFETY: the writer is initialised by libwebp before use and outlives the encode, which
        // reaches it through `custom_ptr`; the picture's planes were filled by an import.
        unsafe {
            let mut writer = std::mem::MaybeUninit::<sys::WebPMemoryWriter>::uninit();
            sys::WebPMemoryWriterInit(writer.as_mut_ptr());
            let mut w = Writer(writer.assume_init());
            self.0.writer = Some(sys::WebPMemoryWrite);
            self.0.custom_ptr = std::ptr::addr_of_mut!(w.0).cast();
            if sys::WebPEncode(config, &mut self.0) == 0 {
                return Err(webp_error(format!("{:?}", self.0.error_code)));
            }
            Ok(std::slice::from_raw_parts(w.0.mem, w.0.size).to_vec())
        }
    }
}

impl Drop for WebpPicture {
    fn drop(&mut self) {
        // SAFETY: initialised by WebPPictureInit (WebPPicture::new); freeing a picture without
        // planes is allowed.
        unsafe { libwebp_sys::WebPPictureFree(&mut self.0) };
    }
}

/// Encodes RGB or RGBA pixels as lossy WebP. The picture is imported straight into libwebp's
/// YUV 4:2:0 planes (`use_argb = 0`): the `webp` crate imports into an ARGB copy first, which
/// costs a 4-byte-per-pixel buffer (24 MB at 3000x2000) and a second conversion pass before the
/// encoder makes the same YUV planes from it.
fn encode_webp(img: &Image, quality: f32) -> Result<Vec<u8>, MediaError> {
    let channels = usize::from(img.channels);
    let mut picture = WebpPicture::new(img.width, img.height)?;
    if img.pixels.len() < img.width as usize * img.height as usize * channels {
        return Err(webp_error("internal: pixel buffer too small".into()));
    }
    let stride = (img.width as usize * channels) as i32;
    // SAFETY: the pixel buffer holds width * height * channels bytes (checked above); the
    // import copies it into planes the picture owns.
    let imported = unsafe {
        if channels == 4 {
            libwebp_sys::WebPPictureImportRGBA(&mut picture.0, img.pixels.as_ptr(), stride)
        } else {
            libwebp_sys::WebPPictureImportRGB(&mut picture.0, img.pixels.as_ptr(), stride)
        }
    };
    if imported == 0 {
        return Err(webp_error("out of memory importing the picture".into()));
    }
    picture.encode(&webp_config(img.width, img.height, quality)?)
}

/// Encodes a JPEG's own YCbCr planes as lossy WebP. JPEG stores full-range YCbCr (JFIF) and
/// VP8 codes video-range YCbCr with the same BT.601 matrix, so a rescale of each sample (and
/// a 2x2 / 2x1 average where the JPEG's chroma is finer than 4:2:0) is all the conversion
/// there is: no RGB in between, and libwebp's RGB -> YUV import is skipped.
fn encode_webp_planes(p: &decode::Planes, quality: f32) -> Result<Vec<u8>, MediaError> {
    if !p.is_valid() {
        return Err(webp_error("internal: inconsistent YCbCr planes".into()));
    }
    let mut picture = WebpPicture::new(p.width, p.height)?;
    // SAFETY: the picture is initialised with use_argb = 0; WebPPictureAlloc makes its Y, U and V
    // planes (width x height and half of each, rounded up, at the strides it sets).
    if unsafe { libwebp_sys::WebPPictureAlloc(&mut picture.0) } == 0 {
        return Err(webp_error("out of memory allocating the picture".into()));
    }
    let (w, h) = (p.width as usize, p.height as usize);
    let (uw, uh) = (w.div_ceil(2), h.div_ceil(2));
    let pic = &picture.0;
    let (ys, uvs) = (pic.y_stride as usize, pic.uv_stride as usize);
    // SAFETY: the plane sizes WebPPictureAlloc made, by libwebp's own definition (stride x
    // rows, the last row only as wide as the picture); no other reference to them exists.
    let (y, u, v) = unsafe {
        (
            std::slice::from_raw_parts_mut(pic.y, ys * (h - 1) + w),
            std::slice::from_raw_parts_mut(pic.u, uvs * (uh - 1) + uw),
            std::slice::from_raw_parts_mut(pic.v, uvs * (uh - 1) + uw),
        )
    };
    let luma = video_range_luma();
    for (row, out) in p.y.chunks(p.y_stride as usize).zip(y.chunks_mut(ys)).take(h) {
        for (o, &s) in out[..w].iter_mut().zip(row) {
            *o = luma[usize::from(s)];
        }
    }
    let (cw, ch) = (p.chroma_width as usize, p.chroma_height as usize);
    for (plane, out) in [(&p.cb, u), (&p.cr, v)] {
        chroma_to_420(&plane[..cw * ch], cw, ch, uw, uh, out, uvs);
    }
    picture.encode(&webp_config(p.width, p.height, quality)?)
}

/// Full-range luma (0-255) to video range (16-235), rounded.
fn video_range_luma() -> [u8; 256] {
    let mut t = [0u8; 256];
    for (i, v) in t.iter_mut().enumerate() {
        *v = ((i as u32 * 219 + 16 * 255 + 127) / 255) as u8;
    }
    t
}

/// A full-range chroma plane of `cw` x `ch` (the 4:2:0 size `uw` x `uh`, or twice it across,
/// down, or both) to video range (16-240) at 4:2:0, averaging the 2 or 4 samples each output
/// sample covers; the last column or row is repeated where the luma size is odd.
fn chroma_to_420(src: &[u8], cw: usize, ch: usize, uw: usize, uh: usize, out: &mut [u8], stride: usize) {
    // Indexed by the sum of four samples (a sum of two counts twice): 128 + (mean - 128) * 224/255.
    let table: Vec<u8> = (0..=1020u32)
        .map(|sum| ((sum * 224 + 4 * 128 * 31 + 510) / 1020) as u8)
        .collect();
    let fx = usize::from(cw != uw);
    let fy = usize::from(ch != uh);
    for oy in 0..uh {
        let r0 = &src[(oy << fy) * cw..][..cw];
        let r1 = &src[((oy << fy) + fy).min(ch - 1) * cw..][..cw];
        let out = &mut out[oy * stride..][..uw];
        for (ox, o) in out.iter_mut().enumerate() {
            let x0 = ox << fx;
            let x1 = (x0 + fx).min(cw - 1);
            let sum = u32::from(r0[x0]) + u32::from(r0[x1]) + u32::from(r1[x0]) + u32::from(r1[x1]);
            *o = table[sum as usize];
        }
    }
}

fn flatten_on_white(rgba: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgba.len() / 4 * 3);
    for px in rgba.chunks_exact(4) {
        let a = u32::from(px[3]);
        for &c in &px[..3] {
            out.push(((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8);
        }
    }
    out
}

/// Writes `bytes` to `path` via a temporary file in the same directory and a rename, so a reader
/// never sees half a rendition.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), MediaError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tools::TempFile::new(dir, "part");
    let mut f = std::fs::File::create(tmp.path()).map_err(|e| MediaError::io("create", tmp.path(), e))?;
    f.write_all(bytes).map_err(|e| MediaError::io("write", tmp.path(), e))?;
    drop(f);
    std::fs::rename(tmp.path(), path).map_err(|e| MediaError::io("rename", path, e))?;
    tmp.forget();
    Ok(())
}

#[cfg(test)]
mod tests;
