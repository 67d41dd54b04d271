//! The EXIF, IPTC and XMP parsers on their own (the first byte picks one), so the
//! fuzzer reaches their depths without a container around them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediadb_formats::media::probe::{exif, iptc, xmp};

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            let _ = exif::parse(rest);
            let _ = exif::orientation(rest);
        }
        1 => {
            let _ = iptc::parse_iim(rest);
        }
        2 => {
            for (_, block) in iptc::irb_blocks(rest) {
                let _ = block.len();
            }
            if let Some(iim) = iptc::iptc_from_irb(rest) {
                let _ = iptc::parse_iim(&iim);
            }
        }
        _ => {
            let _ = xmp::parse(rest);
            let _ = xmp::scan_packet(rest);
            let _ = xmp::decode_packet(rest);
        }
    }
});
