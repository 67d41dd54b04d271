//! Renditions of real fixtures and of generated edge cases (orientation, CMYK, alpha, bombs).

use super::*;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/")).join(rel)
}

fn tmpdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn decode_file(p: &Path) -> image::DynamicImage {
    image::ImageReader::open(p)
        .unwrap()
        .with_guessed_format()
        .unwrap()
        .decode()
        .unwrap()
}

/// A JPEG of `w`x`h` whose top-left quarter is red and the rest blue, with an EXIF orientation.
fn marked_jpeg(w: u16, h: u16, orientation: Option<u16>) -> Vec<u8> {
    let mut px = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let red = x < w / 2 && y < h / 2;
            px.extend_from_slice(if red { &[255, 0, 0] } else { &[0, 0, 255] });
        }
    }
    let mut out = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut out, 95);
    if let Some(o) = orientation {
        // Exif\0\0 + little-endian TIFF with one IFD0 entry: Orientation (SHORT) = o
        let mut app1 = b"Exif\0\0II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0".to_vec();
        app1.extend_from_slice(&o.to_le_bytes());
        app1.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        enc.add_app_segment(1, app1).unwrap();
    }
    enc.encode(&px, w, h, jpeg_encoder::ColorType::Rgb).unwrap();
    out
}

fn pixel(img: &image::DynamicImage, x: u32, y: u32) -> [u8; 3] {
    let p = img.to_rgb8().get_pixel(x, y).0;
    [p[0], p[1], p[2]]
}

fn is_red(p: [u8; 3]) -> bool {
    p[0] > 200 && p[1] < 60 && p[2] < 60
}

fn is_blue(p: [u8; 3]) -> bool {
    p[0] < 60 && p[1] < 60 && p[2] > 200
}

#[test]
fn standard_preset_table() {
    let presets = standard_presets();
    let rows: Vec<(&str, &str, u32, u32, bool)> = presets
        .iter()
        .map(|p| (p.id.as_str(), p.output_file.as_str(), p.width, p.height, p.crop))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("largeimage", "image3000x3000.jpg", 3000, 3000, false),
            ("mediumimage", "image550x550.jpg", 550, 550, false),
            ("thumbimage", "image200x200.jpg", 200, 200, false),
            ("imagecrop", "image110x62cropped.jpg", 110, 62, true),
            ("webplargeimage", "image3000x3000.webp", 3000, 3000, false),
            ("webpmediumimage", "image550x550.webp", 550, 550, false),
            ("webpthumbimage", "image200x200.webp", 200, 200, false),
            ("webpimagecrop", "image110x62cropped.webp", 110, 62, true),
        ]
    );
    assert_eq!(presets[0].name, "Image 3000x3000 JPG");
    assert_eq!(find_preset(&presets, "image200x200.webp").unwrap().id, "webpthumbimage");
    assert!(find_preset(&presets, "nope").is_none());
}

#[test]
fn fitting_never_upscales() {
    assert_eq!(fitted_size(6000, 4000, 200, 200, false), (200, 133));
    assert_eq!(fitted_size(4000, 6000, 550, 550, false), (367, 550));
    assert_eq!(fitted_size(100, 50, 3000, 3000, false), (100, 50));
    assert_eq!(fitted_size(6000, 4000, 110, 62, true), (110, 62));
    assert_eq!(fitted_size(50, 40, 110, 62, true), (50, 40));
    assert_eq!(fitted_size(1, 10_000, 200, 200, false), (1, 200));
    assert_eq!(Rotation::from_degrees(90), Some(Rotation::Cw90));
    assert_eq!(Rotation::from_degrees(-90), Some(Rotation::Cw270));
    assert_eq!(Rotation::from_degrees(540), Some(Rotation::Cw180));
    assert_eq!(Rotation::from_degrees(45), None);
}

#[test]
fn all_presets_of_a_camera_jpeg_from_one_decode() {
    let dir = tmpdir();
    let out = render_presets(
        &fixture("media/DSC00750.jpg"),
        &standard_presets(),
        dir.path(),
        &RenderOptions::default(),
    )
    .unwrap();
    assert_eq!((out.width, out.height), (6000, 4000));
    let got: Vec<(&str, u32, u32)> = out
        .renditions
        .iter()
        .map(|r| (r.preset_id.as_str(), r.width, r.height))
        .collect();
    assert_eq!(
        got,
        vec![
            ("largeimage", 3000, 2000),
            ("mediumimage", 550, 367),
            ("thumbimage", 200, 133),
            ("imagecrop", 110, 62),
            ("webplargeimage", 3000, 2000),
            ("webpmediumimage", 550, 367),
            ("webpthumbimage", 200, 133),
            ("webpimagecrop", 110, 62),
        ]
    );
    for r in &out.renditions {
        let img = decode_file(&r.path);
        assert_eq!((img.width(), img.height()), (r.width, r.height), "{}", r.preset_id);
        assert_eq!(std::fs::metadata(&r.path).unwrap().len(), r.bytes);
    }
    assert!(std::fs::read(dir.path().join("image200x200.webp"))
        .unwrap()
        .starts_with(b"RIFF"));
    // nothing but the renditions is left in the directory (temporary files are renamed away)
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 8);
}

#[test]
fn portrait_and_small_images() {
    let dir = tmpdir();
    let presets = standard_presets();
    let out = render_presets(
        &fixture("media/DSC01154.jpg"),
        &presets[1..3],
        dir.path(),
        &RenderOptions::default(),
    )
    .unwrap();
    assert_eq!((out.renditions[0].width, out.renditions[0].height), (367, 550));
    // an 8x8 image is never upscaled
    let out = render_presets(
        &fixture("metadata/Canon.jpg"),
        &presets,
        dir.path(),
        &RenderOptions::default(),
    )
    .unwrap();
    assert!(out.renditions.iter().all(|r| r.width == 8 && r.height == 8), "{out:?}");
}

#[test]
fn other_decoded_formats() {
    let dir = tmpdir();
    let presets = standard_presets();
    let thumb = find_preset(&presets, "thumbimage").unwrap();
    for (rel, w, h) in [
        ("metadata/PNG.png", 16, 16),
        ("metadata/GIF.gif", 8, 8),
        ("metadata/ExifTool.tif", 160, 120),
        ("media/test-asset-01.jpg", 200, 133),
    ] {
        let out = render_presets(
            &fixture(rel),
            std::slice::from_ref(thumb),
            dir.path(),
            &RenderOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!((out.renditions[0].width, out.renditions[0].height), (w, h), "{rel}");
    }
    // and WebP as input: render one, then render from it
    let webp = find_preset(&presets, "webpmediumimage").unwrap();
    let first = render_presets(
        &fixture("media/test-asset-02.jpg"),
        std::slice::from_ref(webp),
        dir.path(),
        &RenderOptions::default(),
    )
    .unwrap();
    let again = render_presets(
        &first.renditions[0].path,
        std::slice::from_ref(thumb),
        dir.path(),
        &RenderOptions::default(),
    )
    .unwrap();
    assert_eq!((again.renditions[0].width, again.renditions[0].height), (137, 200));
}

#[test]
fn exif_orientation_is_applied() {
    let dir = tmpdir();
    let src = dir.path().join("rotated.jpg");
    // stored 64x32, orientation 6: shown turned 90 degrees clockwise, 32x64
    std::fs::write(&src, marked_jpeg(64, 32, Some(6))).unwrap();
    let preset = Preset::new("t", 200, 200, false, OutputFormat::Jpeg);
    let out = render_presets(
        &src,
        std::slice::from_ref(&preset),
        dir.path(),
        &RenderOptions::default(),
    )
    .unwrap();
    assert_eq!((out.width, out.height), (32, 64));
    let img = decode_file(&out.renditions[0].path);
    assert_eq!((img.width(), img.height()), (32, 64));
    // the stored top-left (red) corner is now top-right
    assert!(is_red(pixel(&img, 28, 4)), "{:?}", pixel(&img, 28, 4));
    assert!(!is_red(pixel(&img, 4, 4)));
}

#[test]
fn extra_rotation_for_rotateasset() {
    let dir = tmpdir();
    let src = dir.path().join("plain.jpg");
    std::fs::write(&src, marked_jpeg(64, 32, None)).unwrap();
    let preset = Preset::new("t", 200, 200, false, OutputFormat::Jpeg);
    let opts = RenderOptions {
        rotate: Rotation::Cw270,
        ..Default::default()
    };
    let out = render_presets(&src, std::slice::from_ref(&preset), dir.path(), &opts).unwrap();
    assert_eq!((out.width, out.height), (32, 64));
    let img = decode_file(&out.renditions[0].path);
    // 270 clockwise: the top-left corner goes to the bottom-left
    assert!(is_red(pixel(&img, 4, 60)), "{:?}", pixel(&img, 4, 60));
    // with a box smaller than the image, the box applies to the rotated shape
    let opts = RenderOptions {
        rotate: Rotation::Cw90,
        ..Default::default()
    };
    let presets = standard_presets();
    let out = render_presets(&fixture("media/DSC00750.jpg"), &presets[2..4], dir.path(), &opts).unwrap();
    assert_eq!((out.width, out.height), (4000, 6000));
    assert_eq!((out.renditions[0].width, out.renditions[0].height), (133, 200));
    assert_eq!((out.renditions[1].width, out.renditions[1].height), (110, 62));
}

#[test]
fn cmyk_jpeg_comes_out_in_the_right_colours() {
    // Adobe-style CMYK JPEG (inverted, APP14 marker), as Photoshop writes: pure magenta+yellow = red
    let (w, h) = (32u16, 16u16);
    let mut px = Vec::new();
    for _ in 0..(w as usize * h as usize) {
        px.extend_from_slice(&[0, 255, 255, 0]);
    }
    let mut data = Vec::new();
    jpeg_encoder::Encoder::new(&mut data, 95)
        .encode(&px, w, h, jpeg_encoder::ColorType::Cmyk)
        .unwrap();
    let dir = tmpdir();
    let src = dir.path().join("cmyk.jpg");
    std::fs::write(&src, &data).unwrap();
    assert_eq!(crate::media::probe(&src).unwrap().colorspace.as_deref(), Some("CMYK"));
    let preset = Preset::new("t", 200, 200, false, OutputFormat::Jpeg);
    let out = render_presets(
        &src,
        std::slice::from_ref(&preset),
        dir.path(),
        &RenderOptions::default(),
    )
    .unwrap();
    let img = decode_file(&out.renditions[0].path);
    assert!(is_red(pixel(&img, 16, 8)), "{:?}", pixel(&img, 16, 8));
}

#[test]
fn alpha_is_flattened_on_white_for_jpeg_and_kept_for_webp() {
    let dir = tmpdir();
    let src = dir.path().join("alpha.png");
    let mut img = image::RgbaImage::new(20, 20);
    for (x, _, p) in img.enumerate_pixels_mut() {
        *p = if x < 10 {
            image::Rgba([0, 0, 0, 0])
        } else {
            image::Rgba([0, 0, 255, 255])
        };
    }
    img.save(&src).unwrap();
    let presets = [
        Preset::new("j", 200, 200, false, OutputFormat::Jpeg),
        Preset::new("w", 200, 200, false, OutputFormat::Webp),
    ];
    let out = render_presets(&src, &presets, dir.path(), &RenderOptions::default()).unwrap();
    let jpg = decode_file(&out.renditions[0].path);
    let p = pixel(&jpg, 2, 10);
    assert!(p.iter().all(|&c| c > 240), "transparent should be white in JPEG: {p:?}");
    let webp = decode_file(&out.renditions[1].path);
    assert!(webp.color().has_alpha());
    assert_eq!(webp.to_rgba8().get_pixel(2, 10).0[3], 0);
}

/// A PNG whose header says 40000x40000 but which holds almost no data: decoding it would need
/// 4.8 GB. It must be refused from the header alone.
fn png_bomb() -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&40_000u32.to_be_bytes());
    ihdr.extend_from_slice(&40_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut z, &[0u8; 64 << 10]).unwrap();
    chunk(&mut png, b"IDAT", &z.finish().unwrap());
    chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn pixel_bomb_is_refused_before_decoding() {
    let dir = tmpdir();
    let src = dir.path().join("bomb.png");
    let bomb = png_bomb();
    assert!(bomb.len() < 4096, "{} bytes", bomb.len());
    std::fs::write(&src, &bomb).unwrap();
    let start = std::time::Instant::now();
    let err = render_presets(&src, &standard_presets(), dir.path(), &RenderOptions::default()).unwrap_err();
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
    assert!(
        matches!(
            err,
            MediaError::TooManyPixels {
                width: 40_000,
                height: 40_000,
                limit: DEFAULT_MAX_PIXELS
            }
        ),
        "{err:?}"
    );
    assert!(err.is_input_error());
    assert!(
        err.to_string()
            .contains("40000x40000 pixels is more than the limit of 100000000"),
        "{err}"
    );
    // the limit is configurable
    let opts = RenderOptions {
        max_pixels: 1000,
        ..Default::default()
    };
    let err = render_presets(
        &fixture("media/test-asset-01.jpg"),
        &standard_presets(),
        dir.path(),
        &opts,
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            MediaError::TooManyPixels {
                width: 1920,
                height: 1281,
                limit: 1000
            }
        ),
        "{err:?}"
    );
    // nothing was written
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn unsupported_and_broken_inputs() {
    let dir = tmpdir();
    let presets = standard_presets();
    // Plain text, and a 32-bit Photoshop document: no renditions, said as such.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "minutes of the meeting\n").unwrap();
    let mut deep = halves_psd(40, 30, false);
    deep[22..24].copy_from_slice(&32u16.to_be_bytes());
    let deep_path = dir.path().join("deep.psd");
    std::fs::write(&deep_path, deep).unwrap();
    for input in [&text, &deep_path] {
        let err = render_presets(input, &presets, dir.path(), &RenderOptions::default()).unwrap_err();
        assert!(matches!(err, MediaError::Unsupported(_)), "{input:?}: {err:?}");
    }
    // a truncated JPEG is a decode error (or renders what is there), never a panic
    let data = std::fs::read(fixture("media/test-asset-02.jpg")).unwrap();
    for cut in [10, 200, 2000, data.len() / 2] {
        let p = dir.path().join("cut.jpg");
        std::fs::write(&p, &data[..cut]).unwrap();
        let _ = render_presets(&p, &presets[2..3], dir.path(), &RenderOptions::default());
    }
    let missing = render_presets(
        &dir.path().join("missing.jpg"),
        &presets,
        dir.path(),
        &RenderOptions::default(),
    );
    assert!(matches!(missing, Err(MediaError::Io { .. })));
}

#[test]
fn convert_cli_writes_one_file() {
    let dir = tmpdir();
    let out = dir.path().join("thumb.webp");
    let r = crate::media::convert_cli(&fixture("media/DSC00750.jpg"), "thumbimage", &out).unwrap();
    assert_eq!((r.width, r.height, r.path.clone()), (200, 133, out.clone()));
    assert!(std::fs::read(&out).unwrap().starts_with(b"RIFF"));
    let out = dir.path().join("large.jpg");
    let r = crate::media::convert_cli(&fixture("media/DSC00750.jpg"), "image3000x3000.jpg", &out).unwrap();
    assert_eq!((r.width, r.height), (3000, 2000));
    let err = crate::media::convert_cli(&fixture("media/DSC00750.jpg"), "huge", &out).unwrap_err();
    assert_eq!(err.to_string(), "unknown preset \"huge\"");
    assert_eq!(crate::media::convert::preset_names().len(), 9, "8 presets and all");
    // `all`: every on-import preset from one decode into a directory.
    let all = dir.path().join("all");
    let r = crate::media::convert_cli(&fixture("media/DSC00750.jpg"), "all", &all).unwrap();
    assert_eq!((r.width, r.height), (3000, 2000));
    let mut files: Vec<String> = std::fs::read_dir(&all)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 8, "{files:?}");
    assert!(files.contains(&"image110x62cropped.webp".to_string()), "{files:?}");
}

/// Peak signal-to-noise ratio of `b` against `a` (8-bit samples), in dB.
fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let se: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    let mse = (se / a.len() as f64).max(1e-9);
    10.0 * (255.0f64 * 255.0 / mse).log10()
}

/// A photo-like RGB test card: smooth colour ramps, a sharp-edged disc and fine stripes.
fn test_card(w: u32, h: u32) -> Vec<u8> {
    let mut px = Vec::with_capacity(w as usize * h as usize * 3);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f64 / w as f64, y as f64 / h as f64);
            let disc = (fx - 0.6).powi(2) + (fy - 0.4).powi(2) < 0.05;
            let stripe = x % 6 < 3 && fy > 0.8;
            let (r, g, b) = if disc {
                (230.0, 40.0, 60.0)
            } else if stripe {
                (20.0, 20.0, 20.0)
            } else {
                (255.0 * fx, 255.0 * fy, 128.0 + 100.0 * (fx * 9.0).sin())
            };
            px.extend_from_slice(&[r as u8, g as u8, b as u8]);
        }
    }
    px
}

/// JFIF's full-range YCbCr of RGB pixels, with chroma averaged over `sx` x `sy` blocks (as a
/// JPEG encoder subsamples it).
fn jpeg_planes(rgb: &[u8], w: u32, h: u32, sx: u32, sy: u32) -> decode::Planes {
    let ycc: Vec<[f64; 3]> = rgb
        .chunks_exact(3)
        .map(|p| {
            let (r, g, b) = (f64::from(p[0]), f64::from(p[1]), f64::from(p[2]));
            [
                0.299 * r + 0.587 * g + 0.114 * b,
                128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b,
                128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b,
            ]
        })
        .collect();
    let (cw, ch) = (w.div_ceil(sx), h.div_ceil(sy));
    let mut cb = Vec::new();
    let mut cr = Vec::new();
    for cy in 0..ch {
        for cx in 0..cw {
            let (mut s, mut n) = ([0.0; 3], 0.0);
            for y in cy * sy..((cy + 1) * sy).min(h) {
                for x in cx * sx..((cx + 1) * sx).min(w) {
                    let v = ycc[(y * w + x) as usize];
                    s[1] += v[1];
                    s[2] += v[2];
                    n += 1.0;
                }
            }
            cb.push((s[1] / n).round().clamp(0.0, 255.0) as u8);
            cr.push((s[2] / n).round().clamp(0.0, 255.0) as u8);
        }
    }
    decode::Planes {
        width: w,
        height: h,
        y_stride: w,
        chroma_width: cw,
        chroma_height: ch,
        y: ycc.iter().map(|v| v[0].round().clamp(0.0, 255.0) as u8).collect(),
        cb,
        cr,
    }
}

#[test]
fn video_range_conversion() {
    let luma = video_range_luma();
    assert_eq!((luma[0], luma[128], luma[255]), (16, 126, 235));
    // 4:4:4 3x3 -> 2x2: each output sample is the mean of the (up to) 2x2 it covers, the last
    // column and row repeated; 0 -> 16, 128 -> 128, 255 -> 240.
    let src = [0, 0, 255, 0, 0, 255, 128, 128, 128];
    let mut out = [0u8; 4];
    chroma_to_420(&src, 3, 3, 2, 2, &mut out, 2);
    assert_eq!(out, [16, 240, 128, 128]);
    // 4:2:2 2x4 -> 2x2 (vertical pairs), with a stride wider than the row.
    let src = [0, 255, 0, 255, 128, 128, 255, 0];
    let mut out = [9u8; 6];
    chroma_to_420(&src, 2, 4, 2, 2, &mut out, 3);
    assert_eq!(out, [16, 240, 9, 184, 72, 9]);
    // already 4:2:0: rescaled only, 128 + (200 - 128) * 224 / 255 = 191.2
    let mut out = [0u8; 1];
    chroma_to_420(&[200], 1, 1, 1, 1, &mut out, 1);
    assert_eq!(out, [191]);
}

#[test]
fn webp_from_jpeg_planes_matches_the_rgb_path() {
    // Odd sizes, and the three chroma layouts the decoder hands over.
    for (w, h) in [(160, 120), (161, 93)] {
        let rgb = test_card(w, h);
        let img = Image {
            pixels: rgb.clone(),
            width: w,
            height: h,
            channels: 3,
        };
        let via_rgb = encode_webp(&img, 80.0).unwrap();
        let reference = psnr(&rgb, &image::load_from_memory(&via_rgb).unwrap().to_rgb8().into_raw());
        for (sx, sy) in [(2, 2), (2, 1), (1, 1)] {
            let planes = jpeg_planes(&rgb, w, h, sx, sy);
            let webp = encode_webp_planes(&planes, 80.0).unwrap();
            let out = image::load_from_memory(&webp).unwrap();
            assert_eq!((out.width(), out.height()), (w, h));
            let got = psnr(&rgb, &out.to_rgb8().into_raw());
            // Swapped or unscaled planes cost far more than a dB; rounding differs slightly.
            assert!(
                got > 25.0 && got > reference - 0.6,
                "{w}x{h} {sx}x{sy}: {got:.2} dB from the planes, {reference:.2} dB through RGB"
            );
        }
    }
    let bad = decode::Planes {
        width: 4,
        height: 4,
        y_stride: 4,
        chroma_width: 3,
        chroma_height: 2,
        y: vec![0; 16],
        cb: vec![0; 6],
        cr: vec![0; 6],
    };
    assert!(encode_webp_planes(&bad, 80.0).is_err());
}

/// The libjpeg-turbo build encodes the large WebP from the decoder's planes: it must look like
/// the one made through RGB (the same decode, converted by libjpeg-turbo).
/// An uncompressed Photoshop document (version 1, no layers): `w`x`h`, the left half red
/// and the right half blue, in RGB, or the same colours in CMYK (stored as Photoshop does,
/// 255 for no ink).
fn halves_psd(w: u32, h: u32, cmyk: bool) -> Vec<u8> {
    let (mode, channels): (u16, usize) = if cmyk { (4, 4) } else { (3, 3) };
    let mut f = b"8BPS\0\x01\0\0\0\0\0\0".to_vec();
    f.extend_from_slice(&(channels as u16).to_be_bytes());
    f.extend_from_slice(&h.to_be_bytes());
    f.extend_from_slice(&w.to_be_bytes());
    f.extend_from_slice(&8u16.to_be_bytes());
    f.extend_from_slice(&mode.to_be_bytes());
    // Colour mode data, image resources, layers: all empty. Then raw planes.
    f.extend_from_slice(&[0; 12]);
    f.extend_from_slice(&0u16.to_be_bytes());
    // Red is C 0 M 100 Y 100 K 0; blue C 100 M 100 Y 0 K 0 (inks before inversion).
    let (left, right): (&[u8], &[u8]) = if cmyk {
        (&[0, 255, 255, 0], &[255, 255, 0, 0])
    } else {
        (&[255, 0, 0], &[0, 0, 255])
    };
    for c in 0..channels {
        for _ in 0..h {
            for x in 0..w {
                let v = if x < w / 2 { left[c] } else { right[c] };
                f.push(if cmyk { 255 - v } else { v });
            }
        }
    }
    f
}

#[test]
fn photoshop_composites_and_bmp_render_in_process() {
    let dir = tmpdir();
    for cmyk in [false, true] {
        let psd = dir.path().join(format!("halves-{cmyk}.psd"));
        std::fs::write(&psd, halves_psd(400, 300, cmyk)).unwrap();
        let out = render_presets(
            &psd,
            &standard_presets(),
            &dir.path().join(format!("out-{cmyk}")),
            &RenderOptions::default(),
        )
        .unwrap();
        assert_eq!((out.width, out.height), (400, 300));
        let thumb = out.renditions.iter().find(|r| r.preset_id == "thumbimage").unwrap();
        assert_eq!((thumb.width, thumb.height), (200, 150));
        let img = decode_file(&thumb.path);
        assert!(is_red(pixel(&img, 20, 75)), "cmyk {cmyk}: {:?}", pixel(&img, 20, 75));
        assert!(is_blue(pixel(&img, 180, 75)), "cmyk {cmyk}: {:?}", pixel(&img, 180, 75));
    }
    // The exiftool samples: an 8x8 RGB document with an ICC profile, and an 8x8 BMP.
    for rel in ["metadata/Photoshop.psd", "metadata/BMP.bmp"] {
        let out = render_presets(
            &fixture(rel),
            &standard_presets(),
            &dir.path().join("samples"),
            &RenderOptions::default(),
        )
        .unwrap();
        assert_eq!((out.width, out.height), (8, 8), "{rel}");
        assert_eq!(out.renditions.len(), 8, "{rel}");
        let thumb = out.renditions.iter().find(|r| r.preset_id == "thumbimage").unwrap();
        assert_eq!((thumb.width, thumb.height), (8, 8), "{rel}");
    }
    // A Photoshop file over the pixel limit is refused from its header.
    let big = dir.path().join("big.psd");
    std::fs::write(&big, halves_psd(400, 300, false)).unwrap();
    let opts = RenderOptions {
        max_pixels: 1000,
        ..RenderOptions::default()
    };
    assert!(matches!(
        render_presets(&big, &standard_presets(), dir.path(), &opts),
        Err(MediaError::TooManyPixels { .. })
    ));
}

#[cfg(feature = "turbojpeg")]
#[test]
fn turbojpeg_planes_give_the_same_webp_as_rgb() {
    // The second decodes to an odd height (1281 / 8 = 161 rows): libjpeg-turbo pads its planes.
    for (rel, w, h) in [("media/DSC00750.jpg", 750, 500), ("media/test-asset-01.jpg", 240, 161)] {
        let path = fixture(rel);
        let header = decode::header(&path, DEFAULT_MAX_PIXELS).unwrap();
        let d = decode::decode(&path, &header, w, h, DEFAULT_MAX_PIXELS).unwrap();
        let planes = d.planes.expect("a 4:2:0 sRGB JPEG decodes to planes");
        assert_eq!((planes.width, planes.height), (w, h), "{rel}");
        assert_eq!(
            (planes.chroma_width, planes.chroma_height),
            (w.div_ceil(2), h.div_ceil(2)),
            "{rel}"
        );
        let rgb = planes.to_rgb().unwrap();
        // The planes' RGB is libjpeg-turbo's own RGB decode at that scale up to the chroma: a
        // scaled RGB decode makes chroma at the output size in the DCT domain, the planes keep
        // it at half and repeat it (36.7 dB on the busy fixture; a swap or misplaced plane
        // costs far more), edges included.
        let data = std::fs::read(&path).unwrap();
        let mut direct = turbojpeg::Image {
            pixels: vec![0u8; rgb.len()],
            width: w as usize,
            pitch: w as usize * 3,
            height: h as usize,
            format: turbojpeg::PixelFormat::RGB,
        };
        turbojpeg::Decompressor::new()
            .unwrap()
            .decompress(&data, direct.as_deref_mut())
            .unwrap();
        let row = w as usize * 3;
        let whole = psnr(&direct.pixels, &rgb);
        let last_row = psnr(&direct.pixels[rgb.len() - row..], &rgb[rgb.len() - row..]);
        let last_col: (Vec<u8>, Vec<u8>) = (0..h as usize)
            .flat_map(|y| (0..3).map(move |c| (y + 1) * row - 3 + c))
            .map(|i| (direct.pixels[i], rgb[i]))
            .unzip();
        let last_col = psnr(&last_col.0, &last_col.1);
        eprintln!("{rel}: planes->RGB vs direct RGB {whole:.2} dB, last row {last_row:.2}, last column {last_col:.2}");
        assert!(
            whole > 33.0 && last_row > 33.0 && last_col > 33.0,
            "{rel}: {whole:.2} {last_row:.2} {last_col:.2}"
        );
        let img = Image {
            pixels: rgb.clone(),
            width: w,
            height: h,
            channels: 3,
        };
        let decoded = |b: Vec<u8>| image::load_from_memory(&b).unwrap().to_rgb8().into_raw();
        let reference = psnr(&rgb, &decoded(encode_webp(&img, 80.0).unwrap()));
        let got = psnr(&rgb, &decoded(encode_webp_planes(&planes, 80.0).unwrap()));
        assert!(
            got > 30.0 && got > reference - 0.5,
            "{rel}: {got:.2} vs {reference:.2} dB"
        );
    }
}
