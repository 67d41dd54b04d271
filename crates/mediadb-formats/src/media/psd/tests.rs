use std::io::Cursor;

use proptest::prelude::*;

use super::*;

fn fixture(rel: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/")).join(rel)
}

/// PackBits as Photoshop writes it: runs of 3 or more repeated, the rest literal.
fn pack_bits(row: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < row.len() {
        let run = row[i..].iter().take(128).take_while(|&&b| b == row[i]).count();
        if run >= 3 {
            out.push((1 - run as isize) as i8 as u8);
            out.push(row[i]);
            i += run;
        } else {
            let mut j = i;
            while j < row.len() && j - i < 128 {
                let ahead = row[j..].iter().take(3).take_while(|&&b| b == row[j]).count();
                if ahead >= 3 {
                    break;
                }
                j += 1;
            }
            out.push((j - i - 1) as u8);
            out.extend_from_slice(&row[i..j]);
            i = j;
        }
    }
    out
}

struct Doc {
    large: bool,
    mode: u16,
    depth: u16,
    width: u32,
    height: u32,
    /// One plane a channel, rows at the document's depth.
    planes: Vec<Vec<u8>>,
    palette: Vec<u8>,
    rle: bool,
    icc: Option<Vec<u8>>,
}

impl Doc {
    fn bytes(&self) -> Vec<u8> {
        let mut f = b"8BPS".to_vec();
        f.extend_from_slice(&(if self.large { 2u16 } else { 1 }).to_be_bytes());
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&(self.planes.len() as u16).to_be_bytes());
        f.extend_from_slice(&self.height.to_be_bytes());
        f.extend_from_slice(&self.width.to_be_bytes());
        f.extend_from_slice(&self.depth.to_be_bytes());
        f.extend_from_slice(&self.mode.to_be_bytes());
        f.extend_from_slice(&(self.palette.len() as u32).to_be_bytes());
        f.extend_from_slice(&self.palette);
        let mut res = Vec::new();
        // Another resource first, with a name, so the walk must skip it.
        res.extend_from_slice(b"8BIM");
        res.extend_from_slice(&0x0404u16.to_be_bytes());
        res.extend_from_slice(&[3, b'a', b'b', b'c']);
        res.extend_from_slice(&3u32.to_be_bytes());
        res.extend_from_slice(&[1, 2, 3, 0]);
        if let Some(icc) = &self.icc {
            res.extend_from_slice(b"8BIM");
            res.extend_from_slice(&RESOURCE_ICC.to_be_bytes());
            res.extend_from_slice(&[0, 0]);
            res.extend_from_slice(&(icc.len() as u32).to_be_bytes());
            res.extend_from_slice(icc);
            if icc.len() % 2 == 1 {
                res.push(0);
            }
        }
        f.extend_from_slice(&(res.len() as u32).to_be_bytes());
        f.extend_from_slice(&res);
        // Layer and mask information: some bytes to skip.
        if self.large {
            f.extend_from_slice(&4u64.to_be_bytes());
        } else {
            f.extend_from_slice(&4u32.to_be_bytes());
        }
        f.extend_from_slice(&[9, 9, 9, 9]);
        let row_bytes = (self.width as usize * usize::from(self.depth)).div_ceil(8);
        if self.rle {
            f.extend_from_slice(&1u16.to_be_bytes());
            let rows: Vec<Vec<u8>> = self
                .planes
                .iter()
                .flat_map(|p| p.chunks(row_bytes).map(pack_bits))
                .collect();
            for r in &rows {
                if self.large {
                    f.extend_from_slice(&(r.len() as u32).to_be_bytes());
                } else {
                    f.extend_from_slice(&(r.len() as u16).to_be_bytes());
                }
            }
            for r in &rows {
                f.extend_from_slice(r);
            }
        } else {
            f.extend_from_slice(&0u16.to_be_bytes());
            for p in &self.planes {
                f.extend_from_slice(p);
            }
        }
        f
    }
}

fn decode(bytes: &[u8]) -> Result<Composite, MediaError> {
    decode_composite(&mut Cursor::new(bytes), 1 << 20)
}

fn rgb_doc(rle: bool, large: bool) -> Doc {
    // 3 x 2: red, green, blue / white, black, grey; a fourth (alpha) channel is ignored.
    Doc {
        large,
        mode: 3,
        depth: 8,
        width: 3,
        height: 2,
        planes: vec![
            vec![255, 0, 0, 255, 0, 128],
            vec![0, 255, 0, 255, 0, 128],
            vec![0, 0, 255, 255, 0, 128],
            vec![7; 6],
        ],
        palette: Vec::new(),
        rle,
        icc: Some(b"not really a profile".to_vec()),
    }
}

const RGB_PIXELS: [u8; 18] = [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 128, 128, 128];

#[test]
fn the_exiftool_sample_decodes_with_its_profile() {
    let mut f = std::fs::File::open(fixture("metadata/Photoshop.psd")).unwrap();
    let c = decode_composite(&mut f, 1 << 20).unwrap();
    assert_eq!((c.width, c.height, c.color), (8, 8, PsdColor::Rgb));
    assert_eq!(c.pixels.len(), 8 * 8 * 3);
    let icc = c.icc.expect("the sample carries an ICC profile");
    assert_eq!(icc.len(), 552);
    assert_eq!(&icc[36..40], b"acsp");
}

#[test]
fn rgb_raw_rle_and_large_documents() {
    for (rle, large) in [(false, false), (true, false), (true, true), (false, true)] {
        let c = decode(&rgb_doc(rle, large).bytes()).unwrap();
        assert_eq!(
            (c.width, c.height, c.color),
            (3, 2, PsdColor::Rgb),
            "rle {rle} large {large}"
        );
        assert_eq!(c.pixels, RGB_PIXELS, "rle {rle} large {large}");
        assert_eq!(c.icc.as_deref(), Some(&b"not really a profile"[..]));
    }
}

#[test]
fn grayscale_16_bit_keeps_the_high_byte() {
    let doc = Doc {
        large: false,
        mode: 1,
        depth: 16,
        width: 2,
        height: 1,
        planes: vec![vec![0x12, 0x34, 0xff, 0x00]],
        palette: Vec::new(),
        rle: true,
        icc: None,
    };
    let c = decode(&doc.bytes()).unwrap();
    assert_eq!(
        (c.color, c.pixels.as_slice(), c.icc),
        (PsdColor::Gray, &[0x12, 0xff][..], None)
    );
}

#[test]
fn cmyk_is_turned_the_usual_way_round() {
    // Photoshop stores 255 for no ink.
    let doc = Doc {
        large: false,
        mode: 4,
        depth: 8,
        width: 1,
        height: 2,
        planes: vec![vec![255, 0], vec![255, 255], vec![255, 255], vec![255, 55]],
        palette: Vec::new(),
        rle: false,
        icc: None,
    };
    let c = decode(&doc.bytes()).unwrap();
    assert_eq!(c.color, PsdColor::Cmyk);
    assert_eq!(c.pixels, [0, 0, 0, 0, 255, 0, 0, 200]);
}

#[test]
fn indexed_and_bitmap_documents() {
    let mut palette = vec![0u8; 768];
    palette[5] = 10; // red of index 5
    palette[256 + 5] = 20;
    palette[512 + 5] = 30;
    let doc = Doc {
        large: false,
        mode: 2,
        depth: 8,
        width: 2,
        height: 1,
        planes: vec![vec![5, 0]],
        palette,
        rle: true,
        icc: None,
    };
    assert_eq!(decode(&doc.bytes()).unwrap().pixels, [10, 20, 30, 0, 0, 0]);
    // 10 pixels a row: two bytes, the last 6 bits padding. A set bit is black.
    let doc = Doc {
        large: false,
        mode: 0,
        depth: 1,
        width: 10,
        height: 1,
        planes: vec![vec![0b1010_0000, 0b0100_0000]],
        palette: Vec::new(),
        rle: false,
        icc: None,
    };
    let c = decode(&doc.bytes()).unwrap();
    assert_eq!(c.color, PsdColor::Gray);
    assert_eq!(c.pixels, [0, 255, 0, 255, 255, 255, 255, 255, 255, 0]);
}

#[test]
fn too_many_pixels_is_refused_from_the_header() {
    let mut doc = rgb_doc(false, false);
    doc.width = 100_000;
    doc.height = 100_000;
    // Only the header: the limit is checked before anything else is read.
    let bytes = doc.bytes()[..26].to_vec();
    assert!(matches!(
        decode_composite(&mut Cursor::new(bytes), 1 << 20),
        Err(MediaError::TooManyPixels { .. })
    ));
}

#[test]
fn broken_documents_are_decode_errors() {
    let good = rgb_doc(true, false).bytes();
    // Cut anywhere before the last colour row ends: an error, never a panic or a short
    // image (the last 4 bytes are the unused alpha channel's two packed rows).
    for cut in 0..good.len() - 4 {
        assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
    }
    // A row whose header asks for more bytes than the row has: the green channel's second
    // row, [2, 255, 0, 128], 16 bytes from the end (then blue's two rows of 4 bytes and
    // alpha's two of 2).
    let mut bytes = good.clone();
    let at = bytes.len() - 16;
    assert_eq!(bytes[at..at + 4], [2, 255, 0, 128]);
    bytes[at] = 5;
    assert!(matches!(decode(&bytes), Err(MediaError::Decode(_))));
    // Unsupported kinds say so.
    let mut lab = rgb_doc(false, false);
    lab.mode = 9;
    assert!(matches!(decode(&lab.bytes()), Err(MediaError::Unsupported(_))));
    let mut deep = rgb_doc(false, false);
    deep.depth = 32;
    assert!(matches!(decode(&deep.bytes()), Err(MediaError::Unsupported(_))));
    assert!(matches!(decode(b"8BPS"), Err(MediaError::Decode(_))));
    assert!(matches!(decode(&[0u8; 64]), Err(MediaError::Decode(_))));
}

#[test]
fn pack_bits_round_trips() {
    let row: Vec<u8> = (0..300u32)
        .map(|i| if i % 50 < 20 { 7 } else { (i * 31 % 251) as u8 })
        .collect();
    let mut out = vec![0u8; row.len()];
    unpack_bits(&pack_bits(&row), &mut out).unwrap();
    assert_eq!(out, row);
}

proptest! {
    #[test]
    fn any_bytes_after_a_valid_header_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut bytes = rgb_doc(true, false).bytes()[..26].to_vec();
        bytes.extend_from_slice(&tail);
        let _ = decode(&bytes);
    }

    #[test]
    fn a_decoded_image_is_always_whole(mutations in proptest::collection::vec((0usize..200, any::<u8>()), 1..6)) {
        let mut bytes = rgb_doc(true, false).bytes();
        for (at, v) in mutations {
            let n = bytes.len();
            bytes[at % n] = v;
        }
        if let Ok(c) = decode(&bytes) {
            prop_assert_eq!(c.pixels.len(), c.width as usize * c.height as usize * c.color.samples());
        }
    }
}
