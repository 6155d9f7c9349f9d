//! Image in, input tensor out, with the seed's arithmetic to the bit (SPEC §2):
//! BGR→RGB, squash to size×size (INTER_LINEAR), `float32 / 255`, then numpy's `image -= MEAN; image /= STD`,
//! which computes in float64 (the lists are float64 arrays) and stores back to float32; HWC→CHW; batch of 1.
//! With torchvision's preset the squash is replaced by its eval geometry: shorter side to `resize` with
//! torchvision's antialiased bilinear filter (libtorch's, made to match PIL), then the centre crop.
use crate::error::{Error, Result};
use crate::models::Preset;
use opencv::{
    core::{Mat, Size},
    imgcodecs, imgproc,
    prelude::*,
};
use std::path::Path;
use tch::{Kind, Tensor};

/// The largest image decoded: 100 Mpixels (300 MB as 8-bit BGR), far above any camera's.
pub const MAX_PIXELS: u64 = 100_000_000;

/// Reads an image file as 8-bit BGR, as `cv2.imread` does: grayscale, alpha and 16-bit images are converted.
/// The bytes are read by Rust so that any path works and the error says why (missing, a folder, unreadable),
/// and the declared size is checked against [`MAX_PIXELS`] before anything is decoded.
pub fn read_image(path: &Path) -> Result<Mat> {
    let fail = |reason: String| Error::Image { path: path.to_path_buf(), reason };
    if path.is_dir() {
        return Err(fail("it is a directory; give an image file".into()));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(format!("{e}; check the path")))?;
    decode(&bytes).map_err(fail)
}

/// [`read_image`] on bytes already in memory; the error is the reason alone.
pub fn decode(bytes: &[u8]) -> std::result::Result<Mat, String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    use crate::imagesize::{sniff, Format};
    let dims = match sniff(bytes) {
        None => {
            return Err("it is not a PNG, JPEG, BMP, TIFF, WebP or PNM image (other formats are not decoded)".into());
        }
        Some((Format::Pnm, None)) => return Err("its PNM header is malformed".into()),
        Some((_, dims)) => dims,
    };
    if let Some((w, h)) = dims {
        let pixels = w.saturating_mul(h);
        if pixels > MAX_PIXELS {
            return Err(format!(
                "it declares {w}×{h} pixels, more than the {} Mpixel limit; scale it down first",
                MAX_PIXELS / 1_000_000
            ));
        }
    }
    let undecodable = "OpenCV cannot decode it (not an image, or truncated); give a PNG, JPEG, BMP, TIFF or WebP file";
    let buf = Mat::from_slice(bytes).map_err(|e| e.to_string())?;
    // IMREAD_COLOR: always 8-bit, 3 channels (gray is expanded, alpha dropped, 16-bit scaled down).
    let image =
        without_stderr(|| imgcodecs::imdecode(&buf, imgcodecs::IMREAD_COLOR)).map_err(|_| undecodable.to_string())?;
    if image.empty() {
        return Err(undecodable.into());
    }
    Ok(image)
}

/// Runs `f` with the process's stderr pointed at /dev/null: libpng and libjpeg print their own warnings and
/// errors there ("libpng error: PNG input buffer is incomplete", "Corrupt JPEG data: …"), which would break our
/// one-line messages; ours already says what went wrong.
fn without_stderr<T>(f: impl FnOnce() -> T) -> T {
    use std::os::fd::AsRawFd;
    let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") else { return f() };
    // SAFETY: plain descriptor calls on fd 2 and on descriptors we own; the saved copy is restored and closed.
    let saved = unsafe { libc::dup(2) };
    if saved < 0 || unsafe { libc::dup2(null.as_raw_fd(), 2) } < 0 {
        return f();
    }
    let result = f();
    unsafe {
        libc::dup2(saved, 2);
        libc::close(saved);
    }
    result
}

/// The model's input for one BGR image: a float tensor of shape [1, 3, size, size].
pub fn to_tensor(image: &Mat, preset: &Preset) -> Result<Tensor> {
    let mut rgb = Mat::default();
    imgproc::cvt_color_def(image, &mut rgb, imgproc::COLOR_BGR2RGB)?;
    let pixels = match preset.resize {
        None => {
            let size = preset.size as i32;
            let mut resized = Mat::default();
            imgproc::resize(&rgb, &mut resized, Size::new(size, size), 0.0, 0.0, imgproc::INTER_LINEAR)?;
            resized.data_bytes()?.to_vec()
        }
        Some(short) => resize_and_crop(&rgb, short, preset.size)?,
    };
    let values: Vec<f32> = pixels
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let c = i % 3;
            let x = p as f32 / 255.0;
            let x = (x as f64 - preset.mean[c]) as f32;
            (x as f64 / preset.std[c]) as f32
        })
        .collect();
    let s = preset.size;
    Ok(Tensor::from_slice(&values).view([1, s, s, 3]).permute([0, 3, 1, 2]).contiguous())
}

/// torchvision's eval geometry on 8-bit RGB: the shorter side to `short` (the longer to
/// `int(short * long / short_side)`) with the antialiased bilinear filter that torchvision uses to match PIL,
/// rounded back to 8 bits as PIL does, then the centre `crop`×`crop` placed at `int(round((side - crop) / 2))`.
fn resize_and_crop(rgb: &Mat, short: i64, crop: i64) -> Result<Vec<u8>> {
    let (w, h) = (rgb.cols() as i64, rgb.rows() as i64);
    let (nw, nh) = if w <= h { (short, short * h / w) } else { (short * w / h, short) };
    if nw < crop || nh < crop {
        return Err(crate::error::Error::Usage(format!(
            "the resize to {short} leaves {nw}×{nh}, smaller than the {crop}×{crop} crop"
        )));
    }
    let image = Tensor::from_slice(rgb.data_bytes()?).view([1, h, w, 3]).permute([0, 3, 1, 2]).to_kind(Kind::Float);
    let resized = image.f_internal_upsample_bilinear2d_aa([nh, nw], false, None, None)?.round().clamp(0.0, 255.0);
    // Python's round, ties to even, as torchvision's center_crop computes the offsets.
    let offset = |side: i64| ((side - crop) as f64 / 2.0).round_ties_even() as i64;
    let cropped = resized.narrow(2, offset(nh), crop).narrow(3, offset(nw), crop);
    let hwc = cropped.squeeze_dim(0).permute([1, 2, 0]).contiguous().to_kind(Kind::Uint8);
    Ok(Vec::<u8>::try_from(hwc.flatten(0, -1))?)
}
