//! The formats read, against the Python original's `cv2.imread` (opencv-python 4.12 in .venv): GIF's first
//! frame (which Debian's OpenCV 4.6 does not read) and a truncated JPEG equal its pixels exactly; AVIF, which
//! cv2 4.12 reads and we do not, is refused by name. Folders: symbolic links are followed, a loop is reported
//! in its place, and a file with an image extension that is not an image fails as it does when given directly.
use crate::common;

use classify_image::{inputs, preprocess};
use common::{image, python};
use opencv::{core::Mat, imgcodecs, prelude::*};
use std::path::{Path, PathBuf};

/// Writes the GIFs, a JPEG cut at 5,000 bytes and an AVIF into the folder given, with `NAME.cv2.png`: what
/// `cv2.imread(NAME, cv2.IMREAD_COLOR)` gives, stored losslessly.
const MAKE_FIXTURES: &str = r#"
import struct, sys
import cv2, numpy as np
from PIL import Image

out, jpeg = sys.argv[1:3]

def indexed(w, h, seed, colours=16):
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, colours, size=(h, w), dtype=np.uint8), "P")
    im.putpalette(rng.integers(0, 256, size=3 * colours, dtype=np.uint8).tolist())
    return im

indexed(37, 23, 0).save(f"{out}/plain.gif")
frames = [indexed(40, 30, seed) for seed in (1, 2, 3)]
frames[0].save(f"{out}/animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
# Index 3 transparent; the background colour is the global table's entry 5.
indexed(32, 24, 4).save(f"{out}/transparent.gif", transparency=3, background=5)

# A 20x10 frame at (7, 9) on a 41x33 screen, background entry 2, index 4 transparent: PIL writes the frame
# as the whole screen, so the logical screen and the image descriptor are patched.
indexed(20, 10, 5).save(f"{out}/offset.gif", transparency=4, background=2)
b = bytearray(open(f"{out}/offset.gif", "rb").read())
b[6:10] = struct.pack("<HH", 41, 33)
at = 13 + (3 << ((b[10] & 7) + 1) if b[10] & 0x80 else 0)
while b[at] == 0x21:  # extensions: introducer, label, sub-blocks
    at += 2
    while b[at]:
        at += b[at] + 1
    at += 1
assert b[at] == 0x2C, "image descriptor"
b[at + 1 : at + 5] = struct.pack("<HH", 7, 9)
open(f"{out}/offset.gif", "wb").write(b)
# The same with its colour table local to the frame: no global table, so no background entry.
size = b[10] & 7
table = b[13 : 13 + (3 << (size + 1))]
local = b[:10] + bytes([b[10] & 0x70]) + b[11:13] + b[13 + len(table) : at + 9]
local += bytes([0x80 | size]) + table + b[at + 10 :]
open(f"{out}/local-table.gif", "wb").write(local)

open(f"{out}/cut.jpg", "wb").write(open(jpeg, "rb").read()[:5000])
Image.fromarray(np.random.default_rng(6).integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(f"{out}/photo.avif")

for name in ("plain.gif", "animated.gif", "transparent.gif", "offset.gif", "local-table.gif", "cut.jpg", "photo.avif"):
    image = cv2.imread(f"{out}/{name}", cv2.IMREAD_COLOR)
    assert image is not None, f"cv2 {cv2.__version__} does not read {name}"
    cv2.imwrite(f"{out}/{name}.cv2.png", image)
"#;

struct Fixtures {
    dir: tempfile::TempDir,
}

impl Fixtures {
    fn new() -> Fixtures {
        let dir = tempfile::tempdir().unwrap();
        let out =
            python().arg("-c").arg(MAKE_FIXTURES).arg(dir.path()).arg(image("squirrel_cls.jpg")).output().unwrap();
        assert!(out.status.success(), "fixtures: {}", String::from_utf8_lossy(&out.stderr));
        Fixtures { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }

    /// What cv2 4.12's imread gives for `name`.
    fn cv2(&self, name: &str) -> Mat {
        let png = self.path(&format!("{name}.cv2.png"));
        imgcodecs::imread(png.to_str().unwrap(), imgcodecs::IMREAD_UNCHANGED).unwrap()
    }
}

/// (rows, cols, channels, bytes) of an 8-bit image.
fn pixels(image: &Mat) -> (i32, i32, i32, Vec<u8>) {
    assert_eq!(image.depth(), opencv::core::CV_8U);
    (image.rows(), image.cols(), image.channels(), image.data_bytes().unwrap().to_vec())
}

fn max_difference(ours: &Mat, theirs: &Mat) -> u8 {
    let (a, b) = (pixels(ours), pixels(theirs));
    assert_eq!((a.0, a.1, a.2), (b.0, b.1, b.2), "shape (rows, cols, channels)");
    a.3.iter().zip(&b.3).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0)
}

#[test]
fn gif_first_frames_equal_cv2_imread() {
    let f = Fixtures::new();
    for name in ["plain.gif", "animated.gif", "transparent.gif", "offset.gif", "local-table.gif"] {
        let (ours, warnings) =
            preprocess::decode_with_warnings(&f.bytes(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(max_difference(&ours, &f.cv2(name)), 0, "{name}: our pixels differ from cv2.imread's");
        assert!(warnings.is_empty(), "{name}: {warnings:?}");
        // The file read from disk gives the same.
        assert_eq!(max_difference(&preprocess::read_image(&f.path(name)).unwrap(), &ours), 0);
    }
    // The cases test what they claim: the offset frame leaves the screen's border in the background colour
    // (the global table's entry 2), and the transparent index shows that colour too.
    let offset = pixels(&f.cv2("offset.gif"));
    let gif = f.bytes("offset.gif");
    let background = [gif[13 + 6 + 2], gif[13 + 6 + 1], gif[13 + 6]]; // entry 2, as BGR
    let at = |row: i32, col: i32| {
        let i = 3 * (row * offset.1 + col) as usize;
        [offset.3[i], offset.3[i + 1], offset.3[i + 2]]
    };
    assert_eq!((offset.0, offset.1), (33, 41));
    for (row, col) in [(0, 0), (8, 7), (9, 6), (19, 27), (32, 40), (9, 27)] {
        assert_eq!(at(row, col), background, "outside the frame at ({row}, {col})");
    }
    assert!((9..19).any(|row| (7..27).any(|col| at(row, col) != background)), "the frame is drawn");
    // Without a global colour table the background is black.
    let local = pixels(&f.cv2("local-table.gif"));
    assert_eq!((local.0, local.1, &local.3[..3]), (33, 41, &[0u8, 0, 0][..]));
    let transparent = pixels(&f.cv2("transparent.gif"));
    let gif = f.bytes("transparent.gif");
    let background = [gif[13 + 15 + 2], gif[13 + 15 + 1], gif[13 + 15]]; // entry 5
    assert!(transparent.3.chunks(3).any(|p| p == background), "transparent pixels show the background colour");
}

#[test]
fn a_truncated_jpeg_decodes_with_a_warning_and_equals_cv2_imread() {
    let f = Fixtures::new();
    let (ours, warnings) = preprocess::decode_with_warnings(&f.bytes("cut.jpg")).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("truncated JPEG") && !warnings[0].contains(".jpg"), "{warnings:?}");
    assert_eq!(max_difference(&ours, &f.cv2("cut.jpg")), 0, "our pixels differ from cv2.imread's");
    let (_, warnings) = preprocess::read_image_with_warnings(&f.path("cut.jpg")).unwrap();
    assert_eq!(warnings.len(), 1);

    for name in ["squirrel_cls.jpg", "orange.jpg", "baboon.jpg", "coffee.png"] {
        let (_, warnings) = preprocess::read_image_with_warnings(&image(name)).unwrap();
        assert!(warnings.is_empty(), "{name}: {warnings:?}");
    }
}

#[test]
fn avif_is_refused_by_name() {
    let f = Fixtures::new();
    let error = preprocess::decode(&f.bytes("photo.avif")).unwrap_err().to_string();
    assert!(error.contains("AVIF is not supported") && error.contains("PNG, JPEG") && error.contains("GIF"), "{error}");
}

#[test]
fn gif_size_is_checked_before_decoding() {
    // A 65535×65535 logical screen (4.3 Gpixels) in 13 bytes.
    let gif = b"GIF89a\xff\xff\xff\xff\x00\x00\x00;";
    let error = preprocess::decode(gif).unwrap_err().to_string();
    assert!(error.contains("65535×65535") && error.contains("Mpixel limit"), "{error}");
    // Cut short: refused, as cv2.imread refuses it.
    let f = Fixtures::new();
    let whole = f.bytes("plain.gif");
    let error = preprocess::decode(&whole[..whole.len() / 2]).unwrap_err().to_string();
    assert!(error.contains("GIF"), "{error}");
    // A screen with no pixels, which cv2.imread refuses too.
    let empty = [&whole[..6], &[0, 0], &whole[8..]].concat();
    let error = preprocess::decode(&empty).unwrap_err().to_string();
    assert!(error.contains("0×23"), "{error}");
}

// ---- folders ----

fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

fn relatives(inputs: &[inputs::Input]) -> Vec<String> {
    inputs.iter().map(|i| i.relative.to_string_lossy().into_owned()).collect()
}

#[test]
fn symlinked_images_and_folders_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let (photos, elsewhere) = (dir.path().join("photos"), dir.path().join("elsewhere"));
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::copy(image("orange.jpg"), elsewhere.join("orange.jpg")).unwrap();
    symlink(image("coffee.png"), photos.join("coffee.png"));
    symlink(&elsewhere, photos.join("more"));
    symlink(photos.join("missing.txt"), photos.join("broken.txt")); // a broken link, not named as an image

    let found = inputs::expand(std::slice::from_ref(&photos)).unwrap();
    assert_eq!(relatives(&found), ["coffee.png", "more/orange.jpg"]);
    assert_eq!(found[1].path, photos.join("more/orange.jpg"));
    for input in &found {
        input.read_image().unwrap();
    }

    // And classified: the binary's JSON has a record with predictions for each.
    let out = assert_cmd::Command::cargo_bin("classify-image")
        .unwrap()
        .args(["-m", "efficientnet_lite0", "--format", "json", "-k", "1", "-i"])
        .arg(&photos)
        .env("TORCH_HOME", dir.path().join("torch-home"))
        .env("CLASSIFY_IMAGE_OFFLINE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let records: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records.iter().all(|r| r["predictions"].is_array()), "{records:?}");
}

#[test]
fn a_symlink_loop_is_reported_in_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(photos.join("sub")).unwrap();
    std::fs::copy(image("coffee.png"), photos.join("a.png")).unwrap();
    std::fs::copy(image("orange.jpg"), photos.join("sub/z.jpg")).unwrap();
    symlink("..", photos.join("sub/up"));

    let found = inputs::expand(std::slice::from_ref(&photos)).unwrap();
    assert_eq!(relatives(&found), ["a.png", "sub/up", "sub/z.jpg"]);
    let error = found[1].read_image().unwrap_err().to_string();
    assert!(error.contains(&photos.join("sub/up").display().to_string()) && error.contains("loop"), "{error}");
    assert!(found[0].read_image().is_ok() && found[2].read_image().is_ok());
}

#[test]
fn a_listed_extension_that_is_no_image_fails_as_when_given_directly() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::write(photos.join("fake.jpg"), "this is not a JPEG\n").unwrap();
    std::fs::write(photos.join("raster.ras"), b"\x59\xa6\x6a\x95").unwrap(); // Sun raster: not a format read
    std::fs::write(photos.join("still.jp2"), b"\0\0\0\x0cjP  \r\n\x87\n").unwrap(); // JPEG 2000: neither

    let found = inputs::expand(std::slice::from_ref(&photos)).unwrap();
    assert_eq!(relatives(&found), ["fake.jpg"]);
    let collected = found[0].read_image().unwrap_err().to_string();
    let direct = inputs::expand(&[photos.join("fake.jpg")]).unwrap();
    assert_eq!(direct[0].read_image().unwrap_err().to_string(), collected);
    assert_eq!(preprocess::read_image(&photos.join("fake.jpg")).unwrap_err().to_string(), collected);
    assert!(collected.contains("not a PNG, JPEG"), "{collected}");

    // Without it the folder has no image files, and the message lists every extension that is read.
    std::fs::remove_file(photos.join("fake.jpg")).unwrap();
    let error = inputs::expand(&[photos]).unwrap_err().to_string();
    for ext in ["jpg", "png", "bmp", "tiff", "webp", "pnm", "gif"] {
        assert!(error.contains(ext), "{error} lacks {ext}");
    }
    assert!(!error.contains("jp2") && !error.contains("ras"), "{error}");
}
