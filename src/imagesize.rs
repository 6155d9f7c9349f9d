//! What an image file is, and its width and height from its header, before anything is decoded:
//! - only the formats of [`Format::READ`] reach a decoder (fuzzing found that Debian's OpenCV 4.6 aborts the
//!   whole process on a malformed PPM header; the exotic decoders — Radiance HDR, Sun raster, PFM, JPEG 2000… —
//!   are attack surface that no photo needs);
//! - a small file declaring a huge image (a 20000×20000 PNG is 1.2 GB decoded) is refused instead of
//!   exhausting memory. TIFF's size is left to OpenCV's own limit (2^30 pixels);
//! - a JPEG whose data stops before its end-of-image marker is told apart, so that the damage is reported.

/// The image formats told apart by signature. AVIF is recognised only to say that it is not decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
    Bmp,
    Tiff,
    Webp,
    Pnm,
    Gif,
    Avif,
}

impl Format {
    /// The formats decoded, in the order messages name them: the one list behind the folder walk's file
    /// extensions, the sniffer and the error messages.
    pub const READ: [Format; 7] =
        [Format::Png, Format::Jpeg, Format::Bmp, Format::Tiff, Format::Webp, Format::Pnm, Format::Gif];

    pub fn name(self) -> &'static str {
        match self {
            Format::Png => "PNG",
            Format::Jpeg => "JPEG",
            Format::Bmp => "BMP",
            Format::Tiff => "TIFF",
            Format::Webp => "WebP",
            Format::Pnm => "PNM",
            Format::Gif => "GIF",
            Format::Avif => "AVIF",
        }
    }

    /// Its file extensions, lower case.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Format::Png => &["png"],
            Format::Jpeg => &["jpg", "jpeg", "jpe"],
            Format::Bmp => &["bmp", "dib"],
            Format::Tiff => &["tif", "tiff"],
            Format::Webp => &["webp"],
            Format::Pnm => &["ppm", "pgm", "pbm", "pnm"],
            Format::Gif => &["gif"],
            Format::Avif => &["avif"],
        }
    }

    /// "PNG, JPEG, … or GIF": the formats decoded, for messages.
    pub fn read_names() -> String {
        let names: Vec<&str> = Format::READ.iter().map(|f| f.name()).collect();
        let (last, rest) = names.split_last().expect("formats");
        format!("{} or {last}", rest.join(", "))
    }

    /// Every file extension of the formats decoded.
    pub fn read_extensions() -> impl Iterator<Item = &'static str> {
        Format::READ.into_iter().flat_map(Format::extensions).copied()
    }
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
    if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        // The logical screen, which the first frame is composed on.
        return Some((Format::Gif, le16(data, 6).zip(le16(data, 8)).map(|(w, h)| (w as u64, h as u64))));
    }
    if avif(data) {
        return Some((Format::Avif, None));
    }
    None
}

/// The colour a GIF's canvas starts with, as RGB: the global colour table's background entry, or black
/// where there is no global table.
pub fn gif_background(data: &[u8]) -> [u8; 3] {
    let (Some(&flags), Some(&index)) = (data.get(10), data.get(11)) else { return [0; 3] };
    let entries = 1usize << ((flags & 0x07) + 1);
    let at = 13 + 3 * index as usize;
    match data.get(at..at + 3) {
        Some(rgb) if flags & 0x80 != 0 && (index as usize) < entries => [rgb[0], rgb[1], rgb[2]],
        _ => [0; 3],
    }
}

/// An ISO media file (`ftyp` box first) whose major or a compatible brand is AVIF's.
fn avif(data: &[u8]) -> bool {
    if data.get(4..8) != Some(b"ftyp") {
        return false;
    }
    let size = be32(data, 0).map_or(0, |s| s as usize).min(data.len());
    data.get(8..size).is_some_and(|brands| brands.chunks(4).any(|b| b == b"avif" || b == b"avis"))
}

/// Whether the JPEG's data reaches its end-of-image marker. When it does not, libjpeg decodes what there is
/// and fills the rest ("Premature end of JPEG file").
pub fn jpeg_complete(data: &[u8]) -> bool {
    JpegMarkers::new(data).any(|(marker, _)| marker == EOI)
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

fn le16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

const SOS: u8 = 0xda;
/// The JPEG end-of-image marker.
pub const EOI: u8 = 0xd9;

/// The first start-of-frame marker (SOF0..SOF15 but DHT, JPG and DAC) carries height, then width.
fn jpeg(data: &[u8]) -> Option<(u64, u64)> {
    let (_, sof) = JpegMarkers::new(data)
        .find(|&(marker, _)| (0xc0..=0xcf).contains(&marker) && ![0xc4, 0xc8, 0xcc].contains(&marker))?;
    Some((be16(sof, 3)? as u64, be16(sof, 1)? as u64))
}

/// A JPEG's markers after SOI, each with its segment's payload (empty for the markers without one), up to and
/// including EOI; it ends early where the data does. The entropy-coded data after a start-of-scan is skipped
/// up to the next marker (a 0xff followed by neither a stuffed zero nor a restart marker).
struct JpegMarkers<'a> {
    data: &'a [u8],
    at: usize,
    ended: bool,
}

impl<'a> JpegMarkers<'a> {
    fn new(data: &'a [u8]) -> Self {
        JpegMarkers { data, at: 2, ended: false }
    }

    /// The next marker's byte, past any fill bytes (0xff repeated).
    fn marker(&mut self) -> Option<u8> {
        while *self.data.get(self.at)? != 0xff {
            self.at += 1;
        }
        while *self.data.get(self.at)? == 0xff {
            self.at += 1;
        }
        self.at += 1;
        Some(self.data[self.at - 1])
    }
}

impl<'a> Iterator for JpegMarkers<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        let data = self.data;
        let marker = self.marker()?;
        if marker == EOI {
            self.ended = true;
        }
        if (0xd0..=0xd9).contains(&marker) || marker == 0x01 {
            return Some((marker, &[])); // markers without a length
        }
        let len = be16(data, self.at)? as usize;
        let payload = data.get(self.at + 2..self.at.checked_add(len)?)?;
        self.at += len;
        if marker == SOS {
            loop {
                let ff = self.at + data[self.at..].iter().position(|&b| b == 0xff)?;
                let after = ff + data[ff..].iter().position(|&b| b != 0xff)?;
                if data[after] == 0 || (0xd0..=0xd7).contains(&data[after]) {
                    self.at = after + 1;
                } else {
                    self.at = ff;
                    break;
                }
            }
        }
        Some((marker, payload))
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

/// "P6 640 480 255": numbers separated by whitespace after the magic, with `#` comments to the end of a line;
/// the maximum value (absent in P1 and P4) between 1 and 65535, the sizes between 1 and `i32::MAX`, as OpenCV's
/// reader asserts (it prints its own error on anything else). Anything else in the header makes it malformed
/// (`None`).
fn pnm(data: &[u8]) -> Option<(u64, u64)> {
    let head = &data[2..data.len().min(512)];
    let wanted = if matches!(data[1], b'1' | b'4') { 2 } else { 3 };
    let mut numbers = Vec::new();
    let mut i = 0;
    while numbers.len() < wanted {
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
    let size = 1..=i32::MAX as u64;
    let sizes_ok = size.contains(&numbers[0]) && size.contains(&numbers[1]);
    let max_ok = numbers.get(2).is_none_or(|max| (1..=65535).contains(max));
    (sizes_ok && max_ok).then_some((numbers[0], numbers[1]))
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
        assert_eq!(dimensions(b"P4\n8 2\n\xff\x00"), Some((8, 2)), "no maximum value in P1 and P4");
        // Found by fuzzing: OpenCV's own error chatter on sizes past INT_MAX, a zero height, a zero maximum.
        assert_eq!(dimensions(b"P6\n2222222222822 2222 00\0"), None);
        assert_eq!(dimensions(b"P6\n640 0\n255\n"), None);
        assert_eq!(dimensions(b"P5\n640 480\n0\n"), None);
        assert_eq!(dimensions(b"not an image"), None);
        // The PPM that aborted OpenCV 4.6: its header has no size, so it is malformed.
        assert_eq!(super::sniff(b"P6\0\0:\0\0\0#?RGBE\0\xff"), Some((super::Format::Pnm, None)));
        assert_eq!(dimensions(&[0xff, 0xd8, 0xff]), None);
        assert_eq!(super::sniff(b"GIF89a\x25\x00\x17\x00\x00\x00\x00;"), Some((super::Format::Gif, Some((37, 23)))));
        assert_eq!(super::sniff(b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf"), Some((super::Format::Avif, None)));
        assert_eq!(super::sniff(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"), None);
    }

    #[test]
    fn the_format_list_names_what_is_read() {
        assert_eq!(super::Format::read_names(), "PNG, JPEG, BMP, TIFF, WebP, PNM or GIF");
        assert!(super::Format::read_extensions().any(|e| e == "jpe"));
        assert!(!super::Format::read_extensions().any(|e| e == "avif" || e == "jp2"));
    }

    #[test]
    fn gif_background_is_the_global_tables_entry() {
        // Global table of 2 entries (flags 0x80), background index 1.
        let gif = b"GIF89a\x01\x00\x01\x00\x80\x01\x00\x10\x20\x30\x40\x50\x60";
        assert_eq!(super::gif_background(gif), [0x40, 0x50, 0x60]);
        // No global table: black.
        assert_eq!(super::gif_background(b"GIF89a\x01\x00\x01\x00\x00\x01\x00"), [0, 0, 0]);
    }

    #[test]
    fn a_jpeg_is_complete_when_its_data_reaches_the_end_of_image_marker() {
        let photo = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("images/orange.jpg")).unwrap();
        assert!(super::jpeg_complete(&photo));
        // Bytes after the marker (padding, an appended file) change nothing.
        assert!(super::jpeg_complete(&[&photo[..], b"\0\0 trailer \xff\xd8"].concat()));
        for cut in [3, 300, 5000, photo.len() / 2, photo.len() - 1] {
            assert!(!super::jpeg_complete(&photo[..cut]), "cut at {cut}");
        }
        // An end-of-image marker inside a segment (an EXIF thumbnail) is not the image's.
        let app1 = [&[0xff, 0xe1, 0x00, 0x08][..], &[0xff, 0xd8, 0xff, 0xd9, 0, 0]].concat();
        let with_thumbnail = [&photo[..2], &app1, &photo[2..]].concat();
        assert!(super::jpeg_complete(&with_thumbnail));
        assert!(!super::jpeg_complete(&with_thumbnail[..with_thumbnail.len() / 2]));
        assert_eq!(super::sniff(&with_thumbnail).unwrap().1, Some((512, 512)));
    }
}
