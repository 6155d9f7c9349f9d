//! Pillow's antialiased resize of 8-bit images (`Image.resize` with BILINEAR or BICUBIC, `Resample.c`), to the
//! bit: what torchvision's eval transform does to the PIL images it is given. For each output pixel the filter,
//! stretched by the reduction factor, weighs the input pixels it covers; the weights are normalised in float64,
//! then made 22-bit fixed point, and each of the two passes (rows first, then columns) rounds its sums half up
//! to 8 bits. libtorch's own antialiased resize computes in float without the rounding between the passes:
//! measured against Pillow, up to 12 levels apart with bicubic's overshoot, where this is exact.
use crate::models::Interpolation;

/// Fixed-point precision of the weights: Pillow's `PRECISION_BITS` for 8-bit images.
const PRECISION_BITS: u32 = 32 - 8 - 2;

impl Interpolation {
    /// The filter's support at a reduction factor of 1, and its value at `x`.
    fn support(self) -> f64 {
        match self {
            Interpolation::Bilinear => 1.0,
            Interpolation::Bicubic => 2.0,
        }
    }

    fn filter(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Interpolation::Bilinear if x < 1.0 => 1.0 - x,
            // Keys' cubic with a = -0.5, as Pillow's.
            Interpolation::Bicubic if x < 1.0 => (1.5 * x - 2.5) * x * x + 1.0,
            Interpolation::Bicubic if x < 2.0 => (((x - 5.0) * x + 8.0) * x - 4.0) * -0.5,
            _ => 0.0,
        }
    }
}

/// One output position's weights: the first input index and the fixed-point weights from there.
struct Taps {
    first: usize,
    weights: Vec<i32>,
}

/// The weights of each of `out` positions resampled from `len` inputs (Pillow's `precompute_coeffs` and
/// `normalize_coeffs_8bpc`).
fn taps(len: usize, out: usize, filter: Interpolation) -> Vec<Taps> {
    let scale = len as f64 / out as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    (0..out)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            // C's (int) casts: toward zero.
            let first = ((center - support + 0.5) as i64).max(0) as usize;
            let last = ((center + support + 0.5) as i64).min(len as i64) as usize;
            let raw: Vec<f64> = (first..last).map(|x| filter.filter((x as f64 - center + 0.5) / filterscale)).collect();
            let total: f64 = raw.iter().sum();
            let one = (1u32 << PRECISION_BITS) as f64;
            let weights = raw
                .iter()
                .map(|w| {
                    let w = if total != 0.0 { w / total } else { *w };
                    (if w < 0.0 { -0.5 + w * one } else { 0.5 + w * one }) as i32
                })
                .collect();
            Taps { first, weights }
        })
        .collect()
}

/// A weighted sum of 8-bit values, rounded half up and clamped to 8 bits (Pillow's `clip8`).
fn clip8(values: impl Iterator<Item = u8>, weights: &[i32]) -> u8 {
    let sum = values.zip(weights).fold(1i64 << (PRECISION_BITS - 1), |s, (v, &w)| s + v as i64 * w as i64);
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// `pixels`, `width`×`height` 8-bit pixels of `channels` interleaved channels, resized to `out_w`×`out_h`
/// with Pillow's antialiased `filter`: rows first, then columns, each pass skipped where its side does not
/// change (as Pillow does).
pub fn resize(
    pixels: &[u8],
    (width, height): (usize, usize),
    channels: usize,
    (out_w, out_h): (usize, usize),
    filter: Interpolation,
) -> Vec<u8> {
    assert_eq!(pixels.len(), width * height * channels, "a {width}×{height}×{channels} image");
    let rows = if out_w != width {
        let taps = taps(width, out_w, filter);
        let mut rows = vec![0u8; out_w * height * channels];
        for y in 0..height {
            let row = &pixels[y * width * channels..(y + 1) * width * channels];
            for (x, t) in taps.iter().enumerate() {
                for c in 0..channels {
                    let values = (t.first..).map(|i| row[i * channels + c]);
                    rows[(y * out_w + x) * channels + c] = clip8(values, &t.weights);
                }
            }
        }
        rows
    } else {
        pixels.to_vec()
    };
    if out_h == height {
        return rows;
    }
    let taps = taps(height, out_h, filter);
    let mut out = vec![0u8; out_w * out_h * channels];
    for (y, t) in taps.iter().enumerate() {
        for x in 0..out_w {
            for c in 0..channels {
                let values = (t.first..).map(|i| rows[(i * out_w + x) * channels + c]);
                out[(y * out_w + x) * channels + c] = clip8(values, &t.weights);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_and_an_unchanged_side_is_the_identity() {
        for filter in [Interpolation::Bilinear, Interpolation::Bicubic] {
            for (len, out) in [(600, 256), (257, 256), (100, 300), (7, 3)] {
                for t in taps(len, out, filter) {
                    let sum: i64 = t.weights.iter().map(|&w| w as i64).sum();
                    assert!((sum - (1 << PRECISION_BITS)).abs() <= t.weights.len() as i64, "{len}→{out}: {sum}");
                }
            }
            let image: Vec<u8> = (0..5 * 4 * 3).map(|i| (i * 37 % 256) as u8).collect();
            assert_eq!(resize(&image, (5, 4), 3, (5, 4), filter), image);
        }
    }

    /// Pillow 13's `Image.resize` of a 9×5 grey image down to 4×3 and up to 13×7 (its values, printed by Pillow
    /// once): `np.array([(i * 97 + (i // 9) * 53) % 256 for i in range(45)], np.uint8).reshape(5, 9)`.
    #[test]
    fn equals_pillow_down_and_up() {
        let image: Vec<u8> = (0..45).map(|i| ((i * 97 + (i / 9) * 53) % 256) as u8).collect();
        let cases: [((usize, usize), Interpolation, &[u8]); 4] = [
            ((4, 3), Interpolation::Bilinear, &[126, 120, 146, 110, 150, 159, 118, 146, 144, 163, 139, 119]),
            ((4, 3), Interpolation::Bicubic, &[127, 118, 149, 107, 153, 165, 111, 150, 142, 165, 140, 117]),
            (
                (13, 7),
                Interpolation::Bilinear,
                &[
                    0, 52, 119, 187, 96, 65, 132, 199, 168, 77, 145, 94, 8, 90, 142, 176, 142, 130, 110, 76, 143, 168,
                    156, 123, 105, 98, 130, 182, 207, 148, 156, 139, 79, 96, 140, 193, 134, 125, 138, 60, 112, 179,
                    247, 156, 125, 192, 82, 70, 137, 205, 154, 68, 173, 126, 109, 177, 199, 181, 122, 138, 113, 67,
                    135, 168, 181, 176, 149, 123, 115, 174, 196, 162, 153, 130, 99, 90, 132, 184, 120, 172, 180, 70,
                    118, 185, 252, 142, 130, 178, 68, 76, 128,
                ],
            ),
            (
                (13, 7),
                Interpolation::Bicubic,
                &[
                    0, 34, 119, 200, 85, 40, 138, 225, 175, 61, 161, 96, 0, 92, 149, 187, 132, 131, 110, 67, 150, 186,
                    161, 113, 99, 104, 134, 202, 231, 135, 163, 150, 68, 76, 147, 217, 123, 118, 152, 54, 104, 185,
                    255, 149, 114, 192, 71, 52, 138, 222, 157, 58, 191, 116, 83, 185, 222, 191, 111, 150, 114, 43, 137,
                    186, 194, 189, 153, 113, 103, 183, 212, 157, 161, 136, 92, 73, 133, 200, 107, 183, 201, 58, 99,
                    192, 255, 129, 122, 194, 52, 61, 128,
                ],
            ),
        ];
        for (size, filter, pillow) in cases {
            assert_eq!(resize(&image, (9, 5), 1, size, filter), pillow, "{filter:?} to {size:?}");
        }
    }
}
