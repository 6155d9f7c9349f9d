//! Grad-CAM (Selvaraju et al., 2017) as pytorch-grad-cam's `GradCAM` computes it, and its overlay on the image
//! as its `show_cam_on_image` draws it, with the same float32 arithmetic:
//!
//! 1. each channel of the target layer's activation is weighted by the mean of its gradient;
//! 2. the weighted sum over channels, clamped at 0, is scaled to [0, 1] (`scale_cam_image`: minus its minimum,
//!    divided by 1e-7 plus its maximum), resized to the network's input size (OpenCV, bilinear) and scaled again;
//! 3. the map, at the size of the image region the input covers, becomes `uint8(255 · map)` coloured with
//!    OpenCV's JET colour map, which is averaged with the image and divided by the maximum: `uint8(255 · x)`.
use crate::error::Result;
use crate::models::Preset;
use crate::Scores;
use opencv::core::{self, Mat, Rect, Size};
use opencv::{imgproc, prelude::*};
use tch::{Device, Kind, Tensor};

/// A Grad-CAM result for one image.
pub struct Explanation {
    /// The class the map is for.
    pub class: usize,
    /// The map at the network's input resolution (size×size, `CV_32FC1`), in [0, 1]: pytorch-grad-cam's
    /// `GradCAM(...)(input)[0]`.
    pub map: Mat,
    /// The network's scores for the image, from the same forward pass.
    pub scores: Scores,
}

/// Step 1 and 2 of the module's description: the normalised map at `size`×`size` from the target layer's
/// activation (as observed) and its gradient, both [1, C, h, w].
pub(crate) fn map(activation: &Tensor, gradient: &Tensor, size: i64) -> Result<Mat> {
    let activation = activation.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?;
    let gradient = gradient.f_to_device(Device::Cpu)?.f_to_kind(Kind::Float)?;
    let weights = gradient.f_mean_dim([2, 3].as_slice(), true, Kind::Float)?;
    let cam = (weights * activation).f_sum_dim_intlist([1].as_slice(), false, Kind::Float)?.f_clamp_min(0.0)?;
    let (h, w) = (cam.size()[1], cam.size()[2]);
    let mut values = Vec::<f32>::try_from(cam.f_contiguous()?.f_view([-1])?)?;
    scale(&mut values);
    let low = Mat::from_slice(&values)?.reshape(1, h as i32)?.try_clone()?;
    debug_assert_eq!(low.cols() as i64, w);
    let mut resized = Mat::default();
    imgproc::resize(&low, &mut resized, Size::new(size as i32, size as i32), 0.0, 0.0, imgproc::INTER_LINEAR)?;
    scale(resized.data_typed_mut::<f32>()?);
    Ok(resized)
}

/// pytorch-grad-cam's `scale_cam_image` without a resize: `(x - min) / (1e-7 + max)`, in float32.
fn scale(values: &mut [f32]) {
    let min = values.iter().copied().fold(f32::INFINITY, f32::min);
    values.iter_mut().for_each(|v| *v -= min);
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let divisor = 1e-7_f32 + max;
    values.iter_mut().for_each(|v| *v /= divisor);
}

/// The part of a `width`×`height` image that the network's input shows: all of it for the seed's squash, the
/// centre crop (in the image's coordinates, rounded to whole pixels) for torchvision's resize and crop.
pub fn input_region(width: i32, height: i32, preset: &Preset) -> Rect {
    match preset.resize {
        None => Rect::new(0, 0, width, height),
        Some(short) => {
            let scale = short as f64 / width.min(height) as f64;
            let side = |s: i32| ((preset.size as f64 / scale).round() as i32).clamp(1, s);
            let (w, h) = (side(width), side(height));
            Rect::new((width - w) / 2, (height - h) / 2, w, h)
        }
    }
}

/// The mask that [`overlay`] colours, at the size of a `width`×`height` image: `map` resized (OpenCV, bilinear)
/// to `region`, 0 outside it (`CV_32FC1`).
pub fn mask(width: i32, height: i32, map: &Mat, region: Rect) -> Result<Mat> {
    let mut mask = Mat::zeros(height, width, core::CV_32FC1)?.to_mat()?;
    let mut target = Mat::roi_mut(&mut mask, region)?;
    imgproc::resize(map, &mut target, region.size(), 0.0, 0.0, imgproc::INTER_LINEAR)?;
    Ok(mask)
}

/// `image` (8-bit BGR) with `map` laid over `region` as pytorch-grad-cam's `show_cam_on_image(image / 255,
/// mask)` draws it, with the [`mask`] of `map`. The result has the image's size.
pub fn overlay(image: &Mat, map: &Mat, region: Rect) -> Result<Mat> {
    let mask = mask(image.cols(), image.rows(), map, region)?;
    let bytes: Vec<u8> = mask.data_typed::<f32>()?.iter().map(|&v| (255.0_f32 * v) as u8).collect();
    let levels = Mat::from_slice(&bytes)?.reshape(1, image.rows())?.try_clone()?;
    let mut heatmap = Mat::default();
    imgproc::apply_color_map(&levels, &mut heatmap, imgproc::COLORMAP_JET)?;
    let image = image.try_clone()?; // continuous
    let blend: Vec<f32> = heatmap
        .data_bytes()?
        .iter()
        .zip(image.data_bytes()?)
        .map(|(&h, &i)| 0.5_f32 * (h as f32 / 255.0) + 0.5_f32 * (i as f32 / 255.0))
        .collect();
    let max = blend.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let bytes: Vec<u8> = blend.iter().map(|&v| (255.0_f32 * (v / max)) as u8).collect();
    Ok(Mat::from_slice(&bytes)?.reshape(3, image.rows())?.try_clone()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::SEED;

    #[test]
    fn scale_is_pytorch_grad_cams() {
        let mut v = [2.0_f32, 4.0, 6.0];
        scale(&mut v);
        assert_eq!(v, [0.0, 2.0 / (1e-7 + 4.0), 4.0 / (1e-7 + 4.0)]);
    }

    #[test]
    fn the_region_is_the_whole_image_or_the_centre_crop() {
        assert_eq!(input_region(640, 480, &SEED), Rect::new(0, 0, 640, 480));
        let torchvision = Preset { resize: Some(256), ..SEED };
        // 480 → 256: the 224 crop is 420 pixels of the original, centred.
        assert_eq!(input_region(640, 480, &torchvision), Rect::new(110, 30, 420, 420));
        assert_eq!(input_region(480, 640, &torchvision), Rect::new(30, 110, 420, 420));
    }

    #[test]
    fn the_overlay_keeps_the_image_size_and_reddens_the_hot_spot() {
        let image = Mat::new_rows_cols_with_default(40, 60, core::CV_8UC3, core::Scalar::all(128.0)).unwrap();
        let mut values = vec![0.0_f32; 16];
        values[5] = 1.0; // row 1, column 1 of a 4×4 map
        let map = Mat::from_slice(&values).unwrap().reshape(1, 4).unwrap().try_clone().unwrap();
        let out = overlay(&image, &map, Rect::new(0, 0, 60, 40)).unwrap();
        assert_eq!((out.rows(), out.cols(), out.typ()), (40, 60, core::CV_8UC3));
        let hot = out.at_2d::<core::Vec3b>(15, 22).unwrap();
        let cold = out.at_2d::<core::Vec3b>(39, 59).unwrap();
        assert!(hot[2] > cold[2] && hot[0] < cold[0], "hot {hot:?}, cold {cold:?}");
    }
}
