//! Image in, input tensor out, with the seed's arithmetic to the bit (SPEC §2):
//! BGR→RGB, squash to size×size (INTER_LINEAR), `float32 / 255`, then numpy's `image -= MEAN; image /= STD`,
//! which computes in float64 (the lists are float64 arrays) and stores back to float32; HWC→CHW; batch of 1.
use crate::error::{Error, Result};
use crate::models::Preset;
use opencv::{core::Mat, imgcodecs, imgproc, prelude::*};
use std::path::Path;
use tch::Tensor;

/// Reads an image file as 8-bit BGR, as `cv2.imread` does. The bytes are read by Rust so that any path works
/// and the error says why (missing, a folder, unreadable).
pub fn read_image(path: &Path) -> Result<Mat> {
    let fail = |reason: String| Error::Image { path: path.to_path_buf(), reason };
    if path.is_dir() {
        return Err(fail("it is a directory; give an image file".into()));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(format!("{e}; check the path")))?;
    if bytes.is_empty() {
        return Err(fail("the file is empty".into()));
    }
    let buf = Mat::from_slice(&bytes)?;
    let image = imgcodecs::imdecode(&buf, imgcodecs::IMREAD_COLOR)?;
    if image.empty() {
        return Err(fail(
            "OpenCV cannot decode it (not an image, or truncated); give a PNG, JPEG, BMP, TIFF or WebP file".into(),
        ));
    }
    Ok(image)
}

/// The model's input for one BGR image: a float tensor of shape [1, 3, size, size].
pub fn to_tensor(image: &Mat, preset: &Preset) -> Result<Tensor> {
    let mut rgb = Mat::default();
    imgproc::cvt_color_def(image, &mut rgb, imgproc::COLOR_BGR2RGB)?;
    let size = preset.size as i32;
    let mut resized = Mat::default();
    imgproc::resize(&rgb, &mut resized, opencv::core::Size::new(size, size), 0.0, 0.0, imgproc::INTER_LINEAR)?;
    let pixels = resized.data_bytes()?;
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
