//! What an image file is, and its width and height from its header, before anything is decoded:
//! - only formats we expect reach OpenCV's decoders (fuzzing found that Debian's OpenCV 4.6 aborts the whole
//!   process on a malformed PPM header; the exotic decoders — Radiance HDR, Sun raster, PFM, JPEG 2000… —
//!   are attack surface that no photo needs);
//! - a small file declaring a huge image (a 20000×20000 PNG is 1.2 GB decoded) is refused instead of
//!   exhausting memory. TIFF's size is left to OpenCV's own limit (2^30 pixels).

/// The formats decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
    Bmp,
    Webp,
    Tiff,
    Pnm,
}

/// The format, by signature, and the size its header declares where it can be read.
pub fn sniff(data: &[u8]) -> Option<(Format, Option<(u64, u64)>)> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        // IHDR is the first chunk: length, "IHDR", width, height (big-endian).
        let dims = be32(data, 16).zip(be32(data, 20)).map(|(w, h)| (w as u64, h as u64));
        return Some((Format::Png, dims));
    }
    if data.starts_with(&[0xff, 0xd8]) {
        return Some((Format::Jpeg, jpeg(data)));
    }
    if data.starts_with(b"BM") {
        return Some((Format::Bmp, bmp(data)));
    }
    if data.starts_with(b"RIFF") && data.get(8..12) == Some(b"WEBP") {
        return Some((Format::Webp, webp(data)));
    }
    if data.starts_with(b"II*\0") || data.starts_with(b"MM\0*") {
        return Some((Format::Tiff, None));
    }
    if data.len() > 2 && data[0] == b'P' && (b'1'..=b'6').contains(&data[1]) {
        return Some((Format::Pnm, pnm(data)));
    }
    None
}

fn bmp(data: &[u8]) -> Option<(u64, u64)> {
    let w = i32::from_le_bytes(data.get(18..22)?.try_into().ok()?);
    let h = i32::from_le_bytes(data.get(22..26)?.try_into().ok()?);
    Some((w.unsigned_abs() as u64, h.unsigned_abs() as u64))
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

/// The first start-of-frame marker (SOF0..SOF15 but DHT, JPG and DAC) carries height, then width.
fn jpeg(data: &[u8]) -> Option<(u64, u64)> {
    let mut at = 2;
    loop {
        while *data.get(at)? != 0xff {
            at += 1;
        }
        while *data.get(at)? == 0xff {
            at += 1;
        }
        let marker = *data.get(at)?;
        at += 1;
        if (0xd0..=0xd9).contains(&marker) || marker == 0x01 {
            continue; // markers without a length
        }
        let len = be16(data, at)? as usize;
        if (0xc0..=0xcf).contains(&marker) && ![0xc4, 0xc8, 0xcc].contains(&marker) {
            return Some((be16(data, at + 5)? as u64, be16(data, at + 3)? as u64));
        }
        at = at.checked_add(len)?;
    }
}

fn webp(data: &[u8]) -> Option<(u64, u64)> {
    let le24 = |at: usize| -> Option<u64> {
        let b = data.get(at..at + 3)?;
        Some(b[0] as u64 | (b[1] as u64) << 8 | (b[2] as u64) << 16)
    };
    match data.get(12..16)? {
        b"VP8X" => Some((le24(24)? + 1, le24(27)? + 1)),
        b"VP8L" => {
            let b = data.get(21..25)?;
            let bits = u32::from_le_bytes(b.try_into().ok()?);
            Some(((bits & 0x3fff) as u64 + 1, ((bits >> 14) & 0x3fff) as u64 + 1))
        }
        b"VP8 " => {
            let w = u16::from_le_bytes(data.get(26..28)?.try_into().ok()?) & 0x3fff;
            let h = u16::from_le_bytes(data.get(28..30)?.try_into().ok()?) & 0x3fff;
            Some((w as u64, h as u64))
        }
        _ => None,
    }
}

/// "P6 640 480 255": numbers separated by whitespace after the magic, with `#` comments to the end of a line.
/// Anything else in the header makes it malformed (`None`).
fn pnm(data: &[u8]) -> Option<(u64, u64)> {
    let head = &data[2..data.len().min(512)];
    let mut numbers = Vec::new();
    let mut i = 0;
    while numbers.len() < 2 {
        match *head.get(i)? {
            b'#' => {
                while *head.get(i)? != b'\n' {
                    i += 1;
                }
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b'0'..=b'9' => {
                let start = i;
                while head.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                numbers.push(std::str::from_utf8(&head[start..i]).ok()?.parse::<u64>().ok()?);
                continue;
            }
            _ => return None,
        }
        i += 1;
    }
    Some((numbers[0], numbers[1]))
}

#[cfg(test)]
mod tests {
    fn dimensions(data: &[u8]) -> Option<(u64, u64)> {
        super::sniff(data)?.1
    }

    #[test]
    fn reads_the_sample_photos_headers() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("images");
        for (name, dims) in [
            ("chelsea.png", (451, 300)),
            ("coffee.png", (600, 400)),
            ("orange.jpg", (512, 512)),
            ("squirrel_cls.jpg", (535, 426)),
        ] {
            assert_eq!(dimensions(&std::fs::read(root.join(name)).unwrap()), Some(dims), "{name}");
        }
        assert_eq!(dimensions(b"P6\n# comment\n640 480\n255\n"), Some((640, 480)));
        assert_eq!(dimensions(b"not an image"), None);
        // The PPM that aborted OpenCV 4.6: its header has no size, so it is malformed.
        assert_eq!(super::sniff(b"P6\0\0:\0\0\0#?RGBE\0\xff"), Some((super::Format::Pnm, None)));
        assert_eq!(dimensions(&[0xff, 0xd8, 0xff]), None);
    }
}
