//! Decoding for renditions: header first (the pixel limit is enforced before any pixel buffer
//! exists), JPEG downscaled in the DCT domain, colour brought to sRGB, always 8-bit RGB or RGBA.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use image::{ImageDecoder, ImageReader, Limits};

use super::sniff::{sniff_bytes, Format, SNIFF_LEN};
use super::MediaError;

/// Decoded pixels, 3 (RGB) or 4 (RGBA) bytes each, in sRGB, as stored (not yet oriented).
pub(crate) struct Decoded {
    /// Empty when `planes` holds the image: [`Planes::to_rgb`] makes the pixels from them.
    pub pixels: Vec<u8>,
    /// The JPEG's own YCbCr planes at the decoded size, when the decoder can give them and they
    /// are sRGB (no other ICC profile): WebP is coded in YUV 4:2:0, so a WebP of this size is
    /// encoded from them directly, without the YCbCr -> RGB -> YUV round trip, while the RGB
    /// pixels for the other renditions are made on another core.
    pub planes: Option<Planes>,
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    /// EXIF orientation 1-8.
    pub orientation: u16,
}

/// Full-range YCbCr planes as a JPEG stores them (JFIF, BT.601), one byte a sample. Luma rows
/// are `y_stride` apart (libjpeg-turbo pads an odd luma size to whole chroma blocks, and may
/// hold a padding row more); chroma is `chroma_width` x `chroma_height`, rows packed: the luma
/// size, or half of it across (4:2:2) or both ways (4:2:0), rounded up.
pub(crate) struct Planes {
    pub width: u32,
    pub height: u32,
    pub y_stride: u32,
    pub chroma_width: u32,
    pub chroma_height: u32,
    pub y: Vec<u8>,
    pub cb: Vec<u8>,
    pub cr: Vec<u8>,
}

impl Planes {
    /// Whether the plane sizes are consistent (a chroma plane is the luma size or half of it,
    /// rounded up, each way) and the buffers hold them.
    pub fn is_valid(&self) -> bool {
        let fits = |c: u32, l: u32| c == l || c == l.div_ceil(2);
        let (w, h) = (self.width as usize, self.height as usize);
        let chroma = self.chroma_width as usize * self.chroma_height as usize;
        w > 0
            && h > 0
            && self.y_stride >= self.width
            && fits(self.chroma_width, self.width)
            && fits(self.chroma_height, self.height)
            && self.y.len() >= self.y_stride as usize * (h - 1) + w
            && self.cb.len() >= chroma
            && self.cr.len() >= chroma
    }

    /// RGB pixels from the planes (libjpeg-turbo's SIMD colour conversion and upsampling).
    #[cfg(feature = "turbojpeg")]
    pub fn to_rgb(&self) -> Result<Vec<u8>, MediaError> {
        turbo::planes_to_rgb(self)
    }

    /// RGB pixels from the planes. Only the `turbojpeg` decoder makes planes.
    #[cfg(not(feature = "turbojpeg"))]
    pub fn to_rgb(&self) -> Result<Vec<u8>, MediaError> {
        Err(MediaError::Decode(
            "internal: YCbCr planes without the turbojpeg feature".into(),
        ))
    }
}

/// Size and orientation from the header alone.
pub(crate) struct Header {
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub orientation: u16,
}

fn check_pixels(width: u32, height: u32, limit: u64) -> Result<(), MediaError> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limit || width == 0 || height == 0 {
        if width == 0 || height == 0 {
            return Err(MediaError::Decode(format!("image has no pixels ({width}x{height})")));
        }
        return Err(MediaError::TooManyPixels {
            width: width.into(),
            height: height.into(),
            limit,
        });
    }
    Ok(())
}

fn open(path: &Path) -> Result<BufReader<std::fs::File>, MediaError> {
    let f = std::fs::File::open(path).map_err(|e| MediaError::io("open", path, e))?;
    Ok(BufReader::with_capacity(64 << 10, f))
}

/// Reads format, size and orientation, and refuses images over `max_pixels`.
pub(crate) fn header(path: &Path, max_pixels: u64) -> Result<Header, MediaError> {
    let mut r = open(path)?;
    let mut head = Vec::with_capacity(SNIFF_LEN);
    r.by_ref()
        .take(SNIFF_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|e| MediaError::io("read", path, e))?;
    r.seek(SeekFrom::Start(0))
        .map_err(|e| MediaError::io("read", path, e))?;
    let format = sniff_bytes(&head);
    if !format.decodes_in_process() {
        return Err(MediaError::Unsupported(match format.extension() {
            Some(ext) => format!("{ext} files are not decoded in-process"),
            None => "the file's content is not a known image format".into(),
        }));
    }
    let info = super::probe::probe_reader(&mut r)?;
    let (Some(width), Some(height)) = (info.width, info.height) else {
        return Err(MediaError::Decode("image header has no size".into()));
    };
    check_pixels(width, height, max_pixels)?;
    Ok(Header {
        format,
        width,
        height,
        orientation: info.orientation.unwrap_or(1),
    })
}

/// Decodes `path`, at least `min_width` x `min_height` where the format can shrink while
/// decoding (JPEG: 1/2, 1/4, 1/8 in the DCT domain), else at full size.
pub(crate) fn decode(
    path: &Path,
    header: &Header,
    min_width: u32,
    min_height: u32,
    max_pixels: u64,
) -> Result<Decoded, MediaError> {
    // Decoders are fuzzed, but a panic on a hostile upload must not take a worker down.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match header.format {
        Format::Jpeg => decode_jpeg(path, header, min_width, min_height, max_pixels),
        Format::Psd => decode_psd(path, header, max_pixels),
        _ => decode_other(path, header, max_pixels),
    }));
    result.unwrap_or_else(|_| Err(MediaError::Decode("decoder failed on this file".into())))
}

fn decode_jpeg(
    path: &Path,
    header: &Header,
    min_width: u32,
    min_height: u32,
    max_pixels: u64,
) -> Result<Decoded, MediaError> {
    #[cfg(feature = "turbojpeg")]
    if let Some(d) = turbo::decode(path, header, min_width, min_height, max_pixels)? {
        return Ok(d);
    }
    // From memory: jpeg-decoder reads the entropy-coded data a byte at a time, which costs a
    // few percent of the decode through a BufReader (perf: BufReader::read_exact 3.6%).
    let data = std::fs::read(path).map_err(|e| MediaError::io("read", path, e))?;
    let mut d = jpeg_decoder::Decoder::new(&data[..]);
    // Progressive JPEGs keep all coefficients; bound that memory by the pixel limit too.
    d.set_max_decoding_buffer_size(usize::try_from(max_pixels.saturating_mul(8)).unwrap_or(usize::MAX));
    d.read_info().map_err(|e| MediaError::Decode(e.to_string()))?;
    let info = d
        .info()
        .ok_or_else(|| MediaError::Decode("JPEG without a frame".into()))?;
    let (full_w, full_h) = (u32::from(info.width), u32::from(info.height));
    check_pixels(full_w, full_h, max_pixels)?;
    let req_w = min_width.clamp(1, full_w) as u16;
    let req_h = min_height.clamp(1, full_h) as u16;
    let (w, h) = d.scale(req_w, req_h).map_err(|e| MediaError::Decode(e.to_string()))?;
    let icc = d.icc_profile();
    let raw = d.decode().map_err(|e| MediaError::Decode(e.to_string()))?;
    let (w, h) = (u32::from(w), u32::from(h));
    let n = w as usize * h as usize;
    let mut pixels = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => raw,
        jpeg_decoder::PixelFormat::L8 => raw.iter().flat_map(|&v| [v, v, v]).collect(),
        jpeg_decoder::PixelFormat::L16 => raw.chunks_exact(2).flat_map(|c| [c[0], c[0], c[0]]).collect(),
        jpeg_decoder::PixelFormat::CMYK32 => cmyk_to_srgb(&raw, icc.as_deref()),
    };
    if pixels.len() < n * 3 {
        return Err(MediaError::Decode("JPEG data is truncated".into()));
    }
    pixels.truncate(n * 3);
    if info.pixel_format == jpeg_decoder::PixelFormat::RGB24 {
        if let Some(icc) = icc.as_deref() {
            to_srgb(&mut pixels, icc, 3);
        }
    }
    Ok(Decoded {
        pixels,
        planes: None,
        width: w,
        height: h,
        channels: 3,
        orientation: header.orientation,
    })
}

/// The smallest of the scales jpeg-decoder offers (1/8, 1/4, 1/2, 1) whose result is at least
/// `min_width` x `min_height`: both decoders then make the same size.
#[cfg_attr(not(feature = "turbojpeg"), allow(dead_code))]
fn dct_scale(full_w: u32, full_h: u32, min_width: u32, min_height: u32) -> u32 {
    let scaled = |v: u32, denom: u32| v.div_ceil(denom);
    [8, 4, 2]
        .into_iter()
        .find(|&d| scaled(full_w, d) >= min_width && scaled(full_h, d) >= min_height)
        .unwrap_or(1)
}

/// JPEG through libjpeg-turbo (feature `turbojpeg`): the same DCT-domain scaling, faster
/// entropy decoding and SIMD. CMYK files are left to jpeg-decoder (their colour handling
/// lives there).
#[cfg(feature = "turbojpeg")]
mod turbo {
    use super::*;

    pub(super) fn decode(
        path: &Path,
        header: &Header,
        min_width: u32,
        min_height: u32,
        max_pixels: u64,
    ) -> Result<Option<Decoded>, MediaError> {
        let data = std::fs::read(path).map_err(|e| MediaError::io("read", path, e))?;
        // The ICC profile and the colour model come from jpeg-decoder's header pass (markers
        // only, no entropy decoding).
        let mut meta = jpeg_decoder::Decoder::new(&data[..]);
        meta.read_info().map_err(|e| MediaError::Decode(e.to_string()))?;
        let info = meta
            .info()
            .ok_or_else(|| MediaError::Decode("JPEG without a frame".into()))?;
        if info.pixel_format == jpeg_decoder::PixelFormat::CMYK32 {
            return Ok(None);
        }
        let icc = meta.icc_profile();
        let mut tj = turbojpeg::Decompressor::new().map_err(|e| MediaError::Decode(e.to_string()))?;
        let hdr = tj.read_header(&data).map_err(|e| MediaError::Decode(e.to_string()))?;
        let (full_w, full_h) = (hdr.width as u32, hdr.height as u32);
        check_pixels(full_w, full_h, max_pixels)?;
        let denom = dct_scale(full_w, full_h, min_width.max(1), min_height.max(1));
        let (w, h) = (full_w.div_ceil(denom), full_h.div_ceil(denom));
        let sampled = matches!(
            hdr.subsamp,
            turbojpeg::Subsamp::Sub2x2 | turbojpeg::Subsamp::Sub2x1 | turbojpeg::Subsamp::None
        );
        let srgb = icc.as_deref().is_none_or(is_srgb);
        if sampled && srgb && hdr.colorspace == turbojpeg::Colorspace::YCbCr {
            let planes = decode_planes(&data, w, h, hdr.subsamp)?;
            return Ok(Some(Decoded {
                pixels: Vec::new(),
                planes: Some(planes),
                width: w,
                height: h,
                channels: 3,
                orientation: header.orientation,
            }));
        }
        let mut image = turbojpeg::Image {
            pixels: vec![0u8; w as usize * h as usize * 3],
            width: w as usize,
            pitch: w as usize * 3,
            height: h as usize,
            format: turbojpeg::PixelFormat::RGB,
        };
        tj.decompress(&data, image.as_deref_mut())
            .map_err(|e| MediaError::Decode(e.to_string()))?;
        let mut pixels = image.pixels;
        if let Some(icc) = icc.as_deref() {
            to_srgb(&mut pixels, icc, 3);
        }
        Ok(Some(Decoded {
            pixels,
            planes: None,
            width: w,
            height: h,
            channels: 3,
            orientation: header.orientation,
        }))
    }

    /// A TurboJPEG decompressor handle for the raw calls the crate does not wrap.
    struct Handle(turbojpeg::raw::tjhandle);

    impl Handle {
        fn new() -> Result<Handle, MediaError> {
            // SAFETY: plain constructor; a null handle is the error case.
            let h = unsafe { turbojpeg::raw::tjInitDecompress() };
            if h.is_null() {
                return Err(MediaError::Decode("libjpeg-turbo: cannot create a decompressor".into()));
            }
            Ok(Handle(h))
        }

        fn error(&self) -> MediaError {
            // SAFETY: the handle is live; libjpeg-turbo returns a NUL-terminated message it owns.
            let msg = unsafe { std::ffi::CStr::from_ptr(turbojpeg::raw::tjGetErrorStr2(self.0)) };
            MediaError::Decode(format!("libjpeg-turbo: {}", msg.to_string_lossy()))
        }
    }

    impl Drop for Handle {
        fn drop(&mut self) {
            // SAFETY: made by tjInitDecompress, destroyed once.
            unsafe { turbojpeg::raw::tjDestroy(self.0) };
        }
    }

    fn plane_size(component: i32, w: u32, h: u32, subsamp: i32) -> (u32, u32) {
        // SAFETY: pure functions of their arguments.
        let (pw, ph) = unsafe {
            (
                turbojpeg::raw::tjPlaneWidth(component, w as i32, subsamp),
                turbojpeg::raw::tjPlaneHeight(component, h as i32, subsamp),
            )
        };
        (pw.max(0) as u32, ph.max(0) as u32)
    }

    /// Decodes into the JPEG's own YCbCr planes at `w` x `h` (one of the DCT scales): no
    /// colour conversion and no chroma upsampling.
    fn decode_planes(data: &[u8], w: u32, h: u32, subsamp: turbojpeg::Subsamp) -> Result<Planes, MediaError> {
        let ss = subsamp as i32;
        let (yw, yh) = plane_size(0, w, h, ss);
        let (cw, ch) = plane_size(1, w, h, ss);
        let mut planes = Planes {
            width: w,
            height: h,
            y_stride: yw,
            chroma_width: cw,
            chroma_height: ch,
            y: vec![0u8; yw as usize * yh as usize],
            cb: vec![0u8; cw as usize * ch as usize],
            cr: vec![0u8; cw as usize * ch as usize],
        };
        if !planes.is_valid() {
            return Err(MediaError::Decode(format!(
                "unexpected chroma planes {cw}x{ch} for {w}x{h}"
            )));
        }
        let tj = Handle::new()?;
        let mut dst = [planes.y.as_mut_ptr(), planes.cb.as_mut_ptr(), planes.cr.as_mut_ptr()];
        let mut strides = [yw as i32, cw as i32, cw as i32];
        // SAFETY: each plane holds stride x plane height bytes, as libjpeg-turbo computes them
        // for the scaled size asked for (tjPlaneWidth/Height above, padding included).
        let r = unsafe {
            turbojpeg::raw::tjDecompressToYUVPlanes(
                tj.0,
                data.as_ptr(),
                data.len() as _,
                dst.as_mut_ptr(),
                w as i32,
                strides.as_mut_ptr(),
                h as i32,
                0,
            )
        };
        if r != 0 {
            return Err(tj.error());
        }
        Ok(planes)
    }

    pub(super) fn planes_to_rgb(p: &Planes) -> Result<Vec<u8>, MediaError> {
        if !p.is_valid() {
            return Err(MediaError::Decode("internal: inconsistent YCbCr planes".into()));
        }
        let subsamp = match (p.chroma_width == p.width, p.chroma_height == p.height) {
            (true, true) => turbojpeg::Subsamp::None,
            (false, true) => turbojpeg::Subsamp::Sub2x1,
            (false, false) => turbojpeg::Subsamp::Sub2x2,
            (true, false) => turbojpeg::Subsamp::Sub1x2,
        };
        // libjpeg-turbo reads the padded planes of this size and subsampling.
        let ss = subsamp as i32;
        let (yw, yh) = plane_size(0, p.width, p.height, ss);
        let (cw, ch) = plane_size(1, p.width, p.height, ss);
        let chroma = cw as usize * ch as usize;
        if p.y_stride < yw
            || p.y.len() < p.y_stride as usize * yh as usize
            || p.cb.len() < chroma
            || p.cr.len() < chroma
        {
            return Err(MediaError::Decode(
                "internal: YCbCr planes smaller than libjpeg-turbo's".into(),
            ));
        }
        let tj = Handle::new()?;
        let mut rgb = vec![0u8; p.width as usize * p.height as usize * 3];
        let mut src = [p.y.as_ptr(), p.cb.as_ptr(), p.cr.as_ptr()];
        let strides = [p.y_stride as i32, p.chroma_width as i32, p.chroma_width as i32];
        // SAFETY: the planes hold libjpeg-turbo's plane sizes (checked above), the output
        // width x height x 3.
        let r = unsafe {
            turbojpeg::raw::tjDecodeYUVPlanes(
                tj.0,
                src.as_mut_ptr(),
                strides.as_ptr(),
                subsamp as i32,
                rgb.as_mut_ptr(),
                p.width as i32,
                (p.width * 3) as i32,
                p.height as i32,
                turbojpeg::raw::TJPF_TJPF_RGB,
                0,
            )
        };
        if r != 0 {
            return Err(tj.error());
        }
        Ok(rgb)
    }
}

fn decode_other(path: &Path, header: &Header, max_pixels: u64) -> Result<Decoded, MediaError> {
    let mut reader = ImageReader::new(open(path)?)
        .with_guessed_format()
        .map_err(|e| MediaError::io("read", path, e))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(header.width.max(1));
    limits.max_image_height = Some(header.height.max(1));
    // Room for a 16-bit RGBA frame of the allowed size, plus the 8-bit copy.
    limits.max_alloc = Some(max_pixels.saturating_mul(12).max(64 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| MediaError::Decode(e.to_string()))?;
    let (w, h) = decoder.dimensions();
    check_pixels(w, h, max_pixels)?;
    let icc = decoder.icc_profile().ok().flatten();
    let img = image::DynamicImage::from_decoder(decoder).map_err(|e| MediaError::Decode(e.to_string()))?;
    let (pixels, channels) = if img.color().has_alpha() {
        (img.into_rgba8().into_raw(), 4)
    } else {
        (img.into_rgb8().into_raw(), 3)
    };
    let mut pixels = pixels;
    if let Some(icc) = icc.as_deref() {
        to_srgb(&mut pixels, icc, channels);
    }
    Ok(Decoded {
        pixels,
        planes: None,
        width: w,
        height: h,
        channels,
        orientation: header.orientation,
    })
}

/// A Photoshop file's composite image (its layers flattened by Photoshop when it saved).
fn decode_psd(path: &Path, header: &Header, max_pixels: u64) -> Result<Decoded, MediaError> {
    use mediadb_formats::media::psd::{decode_composite, PsdColor};
    let c = decode_composite(&mut open(path)?, max_pixels)?;
    let pixels = match c.color {
        PsdColor::Gray => c.pixels.iter().flat_map(|&v| [v, v, v]).collect(),
        PsdColor::Rgb => {
            let mut pixels = c.pixels;
            if let Some(icc) = c.icc.as_deref() {
                to_srgb(&mut pixels, icc, 3);
            }
            pixels
        }
        PsdColor::Cmyk => cmyk_to_srgb(&c.pixels, c.icc.as_deref()),
    };
    Ok(Decoded {
        pixels,
        planes: None,
        width: c.width,
        height: c.height,
        channels: 3,
        orientation: header.orientation,
    })
}

/// sRGB profiles need no conversion; their description names them.
fn is_srgb(icc: &[u8]) -> bool {
    super::sniff::find(&icc[..icc.len().min(4096)], b"sRGB").is_some()
        || super::sniff::find(&icc[..icc.len().min(4096)], b"s\0R\0G\0B").is_some()
}

/// Converts RGB(A) pixels tagged with an ICC profile to sRGB in place (alpha untouched). A
/// profile moxcms cannot use leaves the pixels as they are: better unmanaged than refused.
fn to_srgb(pixels: &mut [u8], icc: &[u8], channels: u8) {
    if is_srgb(icc) {
        return;
    }
    let Ok(src) = moxcms::ColorProfile::new_from_slice(icc) else {
        return;
    };
    if src.color_space != moxcms::DataColorSpace::Rgb {
        return;
    }
    let layout = if channels == 4 {
        moxcms::Layout::Rgba
    } else {
        moxcms::Layout::Rgb
    };
    let dst = moxcms::ColorProfile::new_srgb();
    let Ok(t) = src.create_transform_8bit(layout, &dst, layout, moxcms::TransformOptions::default()) else {
        return;
    };
    let mut out = vec![0u8; pixels.len()];
    if t.transform(pixels, &mut out).is_ok() {
        pixels.copy_from_slice(&out);
    }
}

/// CMYK (as jpeg-decoder returns it: 0 = no ink) to sRGB: through the embedded profile when
/// there is one, else with the naive formula, which is what browsers do without a profile.
fn cmyk_to_srgb(cmyk: &[u8], icc: Option<&[u8]>) -> Vec<u8> {
    let n = cmyk.len() / 4;
    if let Some(icc) = icc {
        if let Ok(src) = moxcms::ColorProfile::new_from_slice(icc) {
            if src.color_space == moxcms::DataColorSpace::Cmyk {
                let dst = moxcms::ColorProfile::new_srgb();
                if let Ok(t) = src.create_transform_8bit(
                    moxcms::Layout::Rgba,
                    &dst,
                    moxcms::Layout::Rgb,
                    moxcms::TransformOptions::default(),
                ) {
                    let mut out = vec![0u8; n * 3];
                    if t.transform(&cmyk[..n * 4], &mut out).is_ok() {
                        return out;
                    }
                }
            }
        }
    }
    let mut out = Vec::with_capacity(n * 3);
    for px in cmyk.chunks_exact(4) {
        let k = 255 - u32::from(px[3]);
        for &c in &px[..3] {
            out.push(((255 - u32::from(c)) * k / 255) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_cmyk_conversion() {
        // no ink = white, full K = black, full C = cyan
        let px = [0, 0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 0];
        assert_eq!(cmyk_to_srgb(&px, None), vec![255, 255, 255, 0, 0, 0, 0, 255, 255]);
    }

    #[test]
    fn icc_profiles_are_converted_to_srgb() {
        // The Adobe RGB (1998) profile embedded in exiftool's ExifTool.jpg.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/metadata/ExifTool.jpg");
        let data = std::fs::read(path).unwrap();
        let mut d = jpeg_decoder::Decoder::new(&data[..]);
        d.read_info().unwrap();
        let icc = d.icc_profile().unwrap();
        assert!(!is_srgb(&icc));
        // A green inside Adobe RGB's wider gamut comes out more saturated in sRGB numbers;
        // neutral grey stays neutral.
        let mut px = vec![60, 160, 60, 128, 128, 128];
        to_srgb(&mut px, &icc, 3);
        assert!(px[1] > 160 && px[0] < 60, "{px:?}");
        let grey = [px[3] as i32, px[4] as i32, px[5] as i32];
        assert!(
            (grey[0] - grey[1]).abs() <= 1 && (grey[1] - grey[2]).abs() <= 1,
            "{px:?}"
        );
    }

    #[test]
    fn dct_scale_is_the_smallest_that_covers_the_box() {
        assert_eq!(dct_scale(6000, 4000, 200, 133), 8);
        assert_eq!(dct_scale(6000, 4000, 550, 367), 8);
        assert_eq!(dct_scale(6000, 4000, 1000, 667), 4);
        assert_eq!(dct_scale(6000, 4000, 3000, 2000), 2);
        assert_eq!(dct_scale(6000, 4000, 3001, 2000), 1);
        assert_eq!(dct_scale(7, 5, 1, 1), 8);
    }

    #[test]
    fn pixel_check() {
        assert!(check_pixels(10_000, 10_000, 100_000_000).is_ok());
        let err = check_pixels(40_000, 40_000, 100_000_000).unwrap_err();
        assert!(matches!(err, MediaError::TooManyPixels { width: 40_000, .. }));
        assert!(err.to_string().contains("40000x40000"), "{err}");
        assert!(matches!(check_pixels(0, 5, 10), Err(MediaError::Decode(_))));
    }
}
