//! The seed's drawing: the top-1 label and its probability in red, at (10, 30) of the original image.
use crate::error::Result;
use opencv::{core, imgproc, prelude::*};

/// The text the seed draws: `"Label: {label}, {prob * 100:.2f}%"`, with the probability as a Python float.
///
/// ```
/// assert_eq!(classify_image::annotate::caption("wreck", 0.99994), "Label: wreck, 99.99%");
/// ```
pub fn caption(label: &str, probability: f32) -> String {
    format!("Label: {label}, {}", crate::caption::percent(probability))
}

/// Draws the caption onto `image` exactly as the seed's `cv2.putText` call does.
pub fn draw(image: &mut core::Mat, text: &str) -> Result<()> {
    red_text(image, text, core::Point::new(10, 30), 0.8, 2)
}

/// Red Hershey Simplex text with its baseline starting at `at`: the seed's caption style, at any size.
pub fn red_text(image: &mut core::Mat, text: &str, at: core::Point, scale: f64, thickness: i32) -> Result<()> {
    let red = core::Scalar::new(0.0, 0.0, 255.0, 0.0);
    imgproc::put_text(image, text, at, imgproc::FONT_HERSHEY_SIMPLEX, scale, red, thickness, imgproc::LINE_8, false)?;
    Ok(())
}

/// A copy of `image` with the caption drawn on it; the original stays as it was.
pub fn annotated(image: &core::Mat, text: &str) -> Result<core::Mat> {
    let mut copy = image.try_clone()?;
    draw(&mut copy, text)?;
    Ok(copy)
}
