//! Image in, input tensor out, with the original script's arithmetic to the bit:
//! BGR→RGB, squash to size×size (INTER_LINEAR), `float32 / 255`, then numpy's `image -= MEAN; image /= STD`,
//! which computes in float64 (the lists are float64 arrays) and stores back to float32; HWC→CHW; batch of 1.
//! With torchvision's preset the squash is replaced by its eval geometry: shorter side to `resize` with the
//! antialiased bilinear or bicubic filter torchvision applies to PIL images (Pillow's, [`crate::resize`]), then
//! the centre crop.
use crate::error::{Error, ImageError, Result};
use crate::imagesize::{self, sniff, Format, EOI};
use crate::models::{Interpolation, Preset};
use opencv::{
    core::{Mat, Size},
    imgcodecs, imgproc,
    prelude::*,
};
use std::path::Path;
use tch::Tensor;

/// The largest image that torchvision's preparation resizes to before its crop: 16 Mpixels (192 MB as float),
/// an aspect ratio of 256:1 at the usual resize to 256.
pub const MAX_RESIZED_PIXELS: u64 = 16_000_000;

/// The largest image decoded: 100 Mpixels (300 MB as 8-bit BGR), far above any camera's.
pub const MAX_PIXELS: u64 = 100_000_000;

/// Reads an image file as 8-bit BGR, as `cv2.imread` does: grayscale, alpha and 16-bit images are converted.
/// The bytes are read by Rust so that any path works and the error says why (missing, a folder, unreadable),
/// and the declared size is checked against [`MAX_PIXELS`] before anything is decoded. Damage that still
/// decodes is dropped; [`read_image_with_warnings`] reports it.
pub fn read_image(path: &Path) -> Result<Mat> {
    read_image_with_warnings(path).map(|(image, _)| image)
}

/// [`read_image`], with the damage found in a file that still decodes (a JPEG cut short…), as short phrases
/// that do not name the file.
pub fn read_image_with_warnings(path: &Path) -> Result<(Mat, Vec<String>)> {
    let fail = |source: ImageError| Error::Image { path: path.to_path_buf(), source };
    if path.is_dir() {
        return Err(fail(ImageError::IsDirectory));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(ImageError::Io(e)))?;
    decode_with_warnings(&bytes).map_err(fail)
}

/// [`read_image`] on bytes already in memory; the error is the reason alone.
pub fn decode(bytes: &[u8]) -> std::result::Result<Mat, ImageError> {
    decode_with_warnings(bytes).map(|(image, _)| image)
}

/// [`read_image_with_warnings`] on bytes already in memory; the error is the reason alone.
///
/// GIF, which Debian's OpenCV 4.6 does not read, goes through the `image` crate and comes out as
/// `cv2.imread` 4.12 gives it; everything else goes through OpenCV. Nothing process-wide is touched: the C
/// decoders may still print their own complaints on stderr.
pub fn decode_with_warnings(bytes: &[u8]) -> std::result::Result<(Mat, Vec<String>), ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let (format, dims) = match sniff(bytes) {
        None => return Err(ImageError::NotAnImage),
        Some((Format::Avif, _)) => return Err(ImageError::AvifUnsupported),
        Some((format @ (Format::Pnm | Format::Webp), None)) => {
            return Err(ImageError::MalformedHeader { format: format.name() })
        }
        Some(found) => found,
    };
    if let Some((width, height)) = dims {
        if width.saturating_mul(height) > MAX_PIXELS {
            return Err(ImageError::TooLarge { width, height, limit: MAX_PIXELS });
        }
    }
    match format {
        Format::Gif => Ok((decode_gif(bytes)?, vec![])),
        Format::Jpeg if !imagesize::jpeg_complete(bytes) => {
            // libjpeg's file reader, which cv2.imread uses, ends data that stops short with an end-of-image
            // marker, and the coefficients never read stay zero: grey blocks, or blurred ones where a progressive
            // JPEG's first scans were read. OpenCV's memory reader leaves other values there (measured against
            // cv2.imread: up to 201 apart); with the marker added here the pixels are cv2.imread's.
            let ended = [bytes, &[0xff, EOI]].concat();
            let warning = "truncated JPEG (no end-of-image marker): the missing part decodes grey or blurred";
            Ok((decode_opencv(&ended, format)?, vec![warning.to_string()]))
        }
        _ => Ok((decode_opencv(bytes, format)?, vec![])),
    }
}

fn decode_opencv(bytes: &[u8], format: Format) -> std::result::Result<Mat, ImageError> {
    let undecodable = || ImageError::Undecodable { format: format.name() };
    let buf = Mat::from_slice(bytes).map_err(ImageError::OpenCv)?;
    // IMREAD_COLOR: always 8-bit, 3 channels (gray is expanded, alpha dropped, 16-bit scaled down).
    let image = imgcodecs::imdecode(&buf, imgcodecs::IMREAD_COLOR).map_err(|_| undecodable())?;
    if image.empty() {
        return Err(undecodable());
    }
    Ok(image)
}

/// A GIF's first frame as 8-bit BGR, composed as `cv2.imread` 4.12 does: on a canvas the size of the logical
/// screen, filled with the global colour table's background colour (black without a global table), where
/// the frame's transparent pixels and the screen outside the frame keep that colour.
fn decode_gif(bytes: &[u8]) -> std::result::Result<Mat, ImageError> {
    use image::ImageDecoder;
    let mut decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes)).map_err(ImageError::Gif)?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 4);
    decoder.set_limits(limits).map_err(ImageError::Gif)?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(ImageError::NoPixels { width, height });
    }
    let too_large = || ImageError::TooLarge { width: width.into(), height: height.into(), limit: MAX_PIXELS };
    let mut rgba = vec![0; usize::try_from(decoder.total_bytes()).map_err(|_| too_large())?];
    decoder.read_image(&mut rgba).map_err(ImageError::Gif)?;
    let [r, g, b] = imagesize::gif_background(bytes);
    let bgr: Vec<u8> =
        rgba.chunks_exact(4).flat_map(|p| if p[3] == 0 { [b, g, r] } else { [p[2], p[1], p[0]] }).collect();
    let image =
        Mat::from_slice(&bgr).and_then(|m| m.reshape(3, height as i32)?.try_clone()).map_err(ImageError::OpenCv)?;
    Ok(image)
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
        Some(short) => resize_and_crop(&rgb, short, preset.size, preset.interpolation)?,
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
/// `int(short * long / short_side)`) with Pillow's antialiased filter, as torchvision resizes a PIL image
/// ([`crate::resize`]), then the centre `crop`×`crop` placed at `int(round((side - crop) / 2))`.
fn resize_and_crop(rgb: &Mat, short: i64, crop: i64, interpolation: Interpolation) -> Result<Vec<u8>> {
    let (w, h) = (rgb.cols() as i64, rgb.rows() as i64);
    let (nw, nh) = if w <= h { (short, short * h / w) } else { (short * w / h, short) };
    if nw < crop || nh < crop {
        return Err(Error::Crop { resize: short, width: nw, height: nh, crop });
    }
    // The whole image is resized before the crop, as torchvision does: a long, thin image would otherwise take
    // memory in proportion to its aspect ratio (a 20533×16 JPEG of 776 bytes asked for 1 GB).
    if nw.saturating_mul(nh) as u64 > MAX_RESIZED_PIXELS {
        return Err(Error::TooThin { width: w, height: h, resize: short, resized: (nw, nh) });
    }
    let size = |w: i64, h: i64| (w as usize, h as usize);
    let resized = crate::resize::resize(rgb.data_bytes()?, size(w, h), 3, size(nw, nh), interpolation);
    // Python's round, ties to even, as torchvision's center_crop computes the offsets.
    let offset = |side: i64| ((side - crop) as f64 / 2.0).round_ties_even() as usize;
    let (top, left, crop, nw) = (offset(nh), offset(nw), crop as usize, nw as usize);
    Ok((top..top + crop).flat_map(|y| &resized[(y * nw + left) * 3..(y * nw + left + crop) * 3]).copied().collect())
}
