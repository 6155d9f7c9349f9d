//! int8 post-training static quantization, as PyTorch's x86 recipe does it: convolution weights in qint8 with a
//! scale per output channel, activations in quint8 with a scale and zero point per tensor, from the ranges the
//! activations took on calibration images. The ranges are what calibration produces and what a calibration file
//! holds; scales and zero points are derived from them when a network is built.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tch::{Device, Kind, Tensor};

/// The smallest and largest value an activation took.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Range {
    pub lo: f64,
    pub hi: f64,
}

impl Range {
    /// `t`'s range, `None` for an empty tensor.
    fn of(t: &Tensor) -> Option<Range> {
        if t.numel() == 0 {
            return None;
        }
        let (lo, hi) = t.aminmax(None, false);
        Some(Range { lo: lo.double_value(&[]), hi: hi.double_value(&[]) })
    }

    /// Finite, and `lo <= hi`.
    pub fn is_valid(&self) -> bool {
        self.lo.is_finite() && self.hi.is_finite() && self.lo <= self.hi
    }
}

/// The ranges recorded at one convolution: of its input (used where the input arrives in floating point, as the
/// network's first convolution's does), of its output after the activation, and of the residual sum for a
/// convolution whose output is added to a shortcut.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConvRanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Range>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<Range>,
    /// The mean of each input channel over the calibration photos: what [`corrected_bias`] needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<Vec<f32>>,
}

impl ConvRanges {
    /// Every range is finite and ordered, and every channel mean finite.
    pub fn is_valid(&self) -> bool {
        [self.input, self.output, self.sum].iter().flatten().all(Range::is_valid) && self.means_are_finite()
    }

    /// Every channel mean is finite (or there are none).
    pub fn means_are_finite(&self) -> bool {
        self.mean.iter().flatten().all(|m| m.is_finite())
    }
}

/// Every convolution's ranges, by the convolution's name in the weights (`layer1.0.conv1`).
pub type Ranges = BTreeMap<String, ConvRanges>;

/// Which of a convolution's activations a range is of.
#[derive(Debug, Clone, Copy)]
pub enum Point {
    Input,
    Output,
    Sum,
}

/// Collects ranges during calibration: shared by every convolution of the network being calibrated.
///
/// Calibration passes over the photos twice. The first pass finds each activation's extremes (and the mean of
/// each input channel of each convolution, for [`corrected_bias`]); the second
/// counts its values in [`BINS`] bins between them. The range kept is the one whose 256 levels give the
/// smallest mean squared error over those counts, rounding inside it and clipping outside (the search
/// PyTorch's histogram observer does, exhaustively here): a rare outlier no longer spreads the levels over
/// values that almost never occur.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<Observed>>);

/// Bins per activation histogram.
pub const BINS: usize = 512;

#[derive(Debug, Default)]
struct Observed {
    extremes: BTreeMap<(String, u8), Range>,
    /// Per convolution: the sum of each input channel's values, and how many values each sum has.
    channel_sums: BTreeMap<String, (Vec<f64>, f64)>,
    /// Present in the second pass.
    histograms: Option<BTreeMap<(String, u8), Vec<f64>>>,
}

impl Recorder {
    /// Records `t` at `name`'s `point`: its extremes in the first pass, its histogram in the second. A
    /// convolution's input is only ever quantized where it is the image, whose range is its extremes: inputs
    /// get no histogram (each is the previous layer's output, whose histogram is kept).
    pub fn record(&self, name: &str, point: Point, t: &Tensor) {
        let mut observed = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let key = (name.to_string(), point as u8);
        let Observed { extremes, channel_sums, histograms } = &mut *observed;
        match histograms {
            None => {
                if matches!(point, Point::Input) {
                    add_channel_sums(channel_sums, name, t);
                }
                let Some(range) = Range::of(t) else { return };
                let e = extremes.entry(key).or_insert(range);
                *e = Range { lo: e.lo.min(range.lo), hi: e.hi.max(range.hi) };
            }
            Some(_) if matches!(point, Point::Input) => {}
            Some(histograms) => {
                let Some(span) = extremes.get(&key).copied() else { return };
                let counts = histogram(t, span);
                let h = histograms.entry(key).or_insert_with(|| vec![0.0; BINS]);
                h.iter_mut().zip(counts).for_each(|(a, b)| *a += b);
            }
        }
    }

    /// Ends the first pass: from now on, values are counted between the extremes found.
    pub fn start_histograms(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).histograms = Some(BTreeMap::new());
    }

    /// Each activation's range: the best clipping of its histogram, or its extremes after one pass only.
    pub fn ranges(&self) -> Ranges {
        let observed = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut ranges = Ranges::new();
        for ((name, point), &span) in &observed.extremes {
            let hist = observed.histograms.as_ref().and_then(|h| h.get(&(name.clone(), *point)));
            let range = Some(hist.map_or(span, |h| best_clip(h, span)));
            let entry: &mut ConvRanges = ranges.entry(name.clone()).or_default();
            match *point {
                p if p == Point::Input as u8 => entry.input = range,
                p if p == Point::Output as u8 => entry.output = range,
                _ => entry.sum = range,
            }
        }
        for (name, (sums, count)) in &observed.channel_sums {
            if let Some(entry) = ranges.get_mut(name) {
                entry.mean = Some(sums.iter().map(|s| (s / count) as f32).collect());
            }
        }
        ranges
    }
}

/// Adds the sums of each channel of `t`, a convolution's input (N, C, H, W), to `name`'s, and their count of
/// values. Summed in float64 as it reads the values, without a float64 copy of `t`.
fn add_channel_sums(channel_sums: &mut BTreeMap<String, (Vec<f64>, f64)>, name: &str, t: &Tensor) {
    if t.dim() != 4 || t.numel() == 0 {
        return;
    }
    let Ok(sums) = Vec::<f64>::try_from(&t.sum_dim_intlist([0, 2, 3].as_slice(), false, Kind::Double)) else {
        return;
    };
    let (total, count) = channel_sums.entry(name.to_string()).or_insert((vec![0.0; sums.len()], 0.0));
    if total.len() == sums.len() {
        total.iter_mut().zip(sums).for_each(|(a, b)| *a += b);
        *count += (t.numel() as i64 / t.size()[1]) as f64;
    }
}

/// Values per tensor that a histogram counts: an evenly strided sample of larger activations, which over 100
/// photos gives millions of values per layer, at a small fraction of counting them all.
const SAMPLE: i64 = 1 << 16;

/// The counts of `t`'s values (an evenly strided sample of at most [`SAMPLE`]) in [`BINS`] equal bins over
/// `span`, which holds them all (the first pass's extremes of the same values).
fn histogram(t: &Tensor, span: Range) -> Vec<f64> {
    let flat = t.to_kind(Kind::Float).contiguous().flatten(0, -1);
    let n = flat.size()[0];
    let sample = flat.slice(0, 0, n, (n / SAMPLE).max(1));
    let per_unit = BINS as f64 / (span.hi - span.lo).max(f64::MIN_POSITIVE);
    // Values are at least `lo`: truncation is the floor.
    let bins = ((sample - span.lo) * per_unit).to_kind(Kind::Int64).clamp(0, BINS as i64 - 1);
    let counts = bins.bincount(None::<Tensor>, BINS as i64);
    Vec::<i64>::try_from(&counts).map_or_else(|_| vec![0.0; BINS], |c| c.into_iter().map(|n| n as f64).collect())
}

/// The range over bin edges, containing 0, that minimises the squared error of 256-level quantization over the
/// histogram `counts` of `span`: rounding error (a level's step squared over 12) for the values inside, the
/// distance to the nearer end for the values outside.
fn best_clip(counts: &[f64], span: Range) -> Range {
    let n = counts.len();
    let width = (span.hi - span.lo) / n as f64;
    let edge = |i: usize| span.lo + width * i as f64;
    // Prefix sums of the counts, of count × centre and of count × centre².
    let (mut c0, mut c1, mut c2) = (vec![0.0; n + 1], vec![0.0; n + 1], vec![0.0; n + 1]);
    for (i, &k) in counts.iter().enumerate() {
        let centre = edge(i) + width / 2.0;
        c0[i + 1] = c0[i] + k;
        c1[i + 1] = c1[i] + k * centre;
        c2[i + 1] = c2[i] + k * centre * centre;
    }
    // Squared distance of the values in bins [a, b) to the point x.
    let outside = |a: usize, b: usize, x: f64| (c2[b] - c2[a]) - 2.0 * x * (c1[b] - c1[a]) + x * x * (c0[b] - c0[a]);
    let mut best = (f64::INFINITY, span);
    for s in 0..n {
        let lo = edge(s).min(0.0);
        if edge(s) > 0.0 && s > 0 {
            break;
        }
        for e in (s + 1..=n).rev() {
            let hi = edge(e).max(0.0);
            if edge(e) < 0.0 {
                break;
            }
            let step = (hi - lo) / 255.0;
            let error = (c0[e] - c0[s]) * step * step / 12.0 + outside(0, s, lo) + outside(e, n, hi);
            if error < best.0 {
                best = (error, Range { lo, hi });
            }
        }
    }
    best.1
}

/// The affine map of a quint8 tensor: real = scale × (q − zero_point).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QParams {
    pub scale: f64,
    pub zero_point: i64,
}

impl QParams {
    /// The map that covers `range` (widened to include 0, so that zero padding is exact) with 256 levels, as
    /// PyTorch's affine observers compute it.
    pub fn covering(range: Range) -> QParams {
        let (lo, hi) = (range.lo.min(0.0), range.hi.max(0.0));
        let scale = ((hi - lo) / 255.0).max(f64::from(f32::EPSILON));
        let zero_point = (-lo / scale).round().clamp(0.0, 255.0) as i64;
        QParams { scale, zero_point }
    }

    pub fn quantize(&self, t: &Tensor) -> Tensor {
        t.quantize_per_tensor(self.scale, self.zero_point, Kind::QUInt8)
    }
}

/// `t` in floating point: dequantized if it is quantized. A network's features are dequantized before the
/// global pooling: the mean of 49 values is finer than their levels, and the classifier gets it whole.
pub fn dequantized(t: &Tensor) -> Tensor {
    if is_quantized(t) {
        t.dequantize()
    } else {
        t.shallow_clone()
    }
}

/// Whether `t` holds quantized values.
pub fn is_quantized(t: &Tensor) -> bool {
    matches!(t.kind(), Kind::QUInt8 | Kind::QInt8 | Kind::QInt32)
}

/// `xs` padded with zeros (`[left, right, top, bottom]`). A quantized tensor is padded through its integers with
/// its zero point: libtorch's own padding of quantized tensors is slow, and so is the convolution after it.
pub fn zero_pad(xs: &Tensor, pad: [i64; 4]) -> Tensor {
    if !is_quantized(xs) {
        return xs.constant_pad_nd(pad);
    }
    let (scale, zero_point) = (xs.q_scale(), xs.q_zero_point());
    let padded = xs.int_repr().pad(pad, "constant", zero_point as f64);
    padded.internal_make_per_tensor_quantized_tensor(scale, zero_point)
}

/// A convolution (or fully connected) weight in qint8, symmetric, one scale per output channel: the largest magnitude of each
/// channel maps to 127.5 levels, as PyTorch's per-channel symmetric observer does.
pub fn quantize_weight(weight: &Tensor) -> Tensor {
    let weight = weight.to_kind(Kind::Float).contiguous();
    let channels = weight.size()[0];
    let rest: Vec<i64> = (1..weight.dim() as i64).collect();
    // The largest magnitude as the larger of the maximum and minus the minimum: no copy of the weight (VGG's
    // first classifier layer is 0.4 GB).
    let amax = weight.amax(rest.as_slice(), false).maximum(&-weight.amin(rest.as_slice(), false));
    let scales = (amax.to_kind(Kind::Double) / 127.5).clamp_min(f64::from(f32::EPSILON));
    let zeros = Tensor::zeros([channels], (Kind::Int64, Device::Cpu));
    weight.quantize_per_channel(&scales, &zeros, 0, Kind::QInt8)
}

/// A convolution's bias corrected for rounding its weights to int8 (`qweight`): rounding moves each output
/// channel's mean by the weight error times the input's mean, Σ (Ŵ − W)·E[x] over its input channels and kernel
/// taps, which the bias takes back (the bias correction of Nagel et al., "Data-Free Quantization", 2019, with
/// E[x] measured on the calibration photos). Depthwise convolutions, with nine weights per channel, are where it
/// counts. `mean` has one value per input channel; the zero padding at the borders is not modelled.
pub fn corrected_bias(
    weight: &Tensor,
    qweight: &Tensor,
    bias: Option<&Tensor>,
    mean: &[f32],
    groups: i64,
) -> Result<Tensor, String> {
    let size = weight.size();
    let (cout, cin_g) = (size[0], size[1]);
    if mean.len() as i64 != cin_g * groups {
        return Err(format!("{} channel means for {} input channels", mean.len(), cin_g * groups));
    }
    let error =
        (qweight.dequantize() - weight.to_kind(Kind::Float)).sum_dim_intlist([2, 3].as_slice(), false, Kind::Double);
    let mean = Tensor::from_slice(mean).to_kind(Kind::Double).view([groups, 1, cin_g]);
    let shift =
        (error.view([groups, cout / groups, cin_g]) * mean).sum_dim_intlist([2].as_slice(), false, Kind::Double);
    let bias = bias.map_or_else(|| Tensor::zeros([cout], (Kind::Double, Device::Cpu)), |b| b.to_kind(Kind::Double));
    Ok((bias - shift.view([cout])).to_kind(Kind::Float))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::test_data;

    #[test]
    fn covering_maps_the_range_ends_and_zero_onto_levels() {
        let q = QParams::covering(Range { lo: -1.0, hi: 3.0 });
        assert!((q.scale - 4.0 / 255.0).abs() < 1e-12);
        assert_eq!(q.zero_point, 64);
        // A range above 0 is widened to include it: zero point 0.
        let q = QParams::covering(Range { lo: 0.5, hi: 6.0 });
        assert_eq!(q.zero_point, 0);
        assert!((q.scale - 6.0 / 255.0).abs() < 1e-12);
        // A constant zero activation gets a tiny scale, not a division by zero.
        let q = QParams::covering(Range { lo: 0.0, hi: 0.0 });
        assert!(q.scale > 0.0 && q.scale.is_finite());
    }

    #[test]
    fn one_pass_gives_the_extremes_and_two_clip_rare_outliers() {
        let r = Recorder::default();
        r.record("conv", Point::Output, &Tensor::from_slice(&[0.0f32, 2.0]));
        r.record("conv", Point::Output, &Tensor::from_slice(&[-1.0f32, 1.0]));
        r.record("conv", Point::Sum, &Tensor::from_slice(&[5.0f32]));
        let ranges = r.ranges();
        assert_eq!(ranges["conv"].output, Some(Range { lo: -1.0, hi: 2.0 }));
        assert_eq!(ranges["conv"].sum, Some(Range { lo: 5.0, hi: 5.0 }));
        assert_eq!(ranges["conv"].input, None);

        // Ten photos' million values in [0, 1] (sampled: 65,536 a photo) and one value at 3: the levels go to
        // [0, 1.6] or so, not [0, 3]; clipping the one value costs less than tripling the step for the others.
        let r = Recorder::default();
        let photos: Vec<Tensor> = (0..10).map(|i| test_data::rand(&[1_000_000], 401 + i)).collect();
        let _ = photos[0].get(0).fill_(3.0);
        for pass in 0..2 {
            if pass == 1 {
                r.start_histograms();
            }
            for photo in &photos {
                r.record("conv", Point::Output, photo);
            }
        }
        let out = r.ranges()["conv"].output.unwrap();
        assert_eq!(out.lo, 0.0);
        assert!(out.hi > 0.9 && out.hi < 2.0, "clipped to {out:?}");
        // Without outliers, nothing is clipped.
        let r = Recorder::default();
        let values = Tensor::from_slice(&[-3.0f32, 0.5, 7.0]);
        r.record("conv", Point::Input, &values);
        r.start_histograms();
        r.record("conv", Point::Input, &values);
        let input = r.ranges()["conv"].input.unwrap();
        assert!((input.lo + 3.0).abs() < 0.05 && (input.hi - 7.0).abs() < 0.05, "{input:?}");
    }

    #[test]
    fn the_first_pass_records_each_input_channels_mean() {
        let r = Recorder::default();
        let a = Tensor::from_slice(&[1.0f32, 3.0, 10.0, 20.0]).view([1, 2, 1, 2]);
        let b = Tensor::from_slice(&[5.0f32, 5.0, 0.0, 0.0]).view([1, 2, 2, 1]);
        r.record("conv", Point::Input, &a);
        r.record("conv", Point::Input, &b);
        r.start_histograms();
        r.record("conv", Point::Input, &(&a * 100.0));
        assert_eq!(r.ranges()["conv"].mean, Some(vec![3.5, 7.5]));
    }

    #[test]
    fn the_corrected_bias_takes_back_what_rounding_the_weights_moves() {
        // Two groups of three input channels, each input channel constant: with int8 weights, the corrected
        // bias gives the float convolution's output, where the plain bias is off by the weights' rounding.
        let weight = test_data::randn(&[4, 3, 3, 3], 404) * 0.3;
        let bias = test_data::randn(&[4], 405);
        let mean = [0.5f32, 1.0, 2.0, -1.0, 3.0, 0.25];
        let x = Tensor::from_slice(&mean).view([1, 6, 1, 1]).expand([1, 6, 5, 5], false);
        let conv = |w: &Tensor, b: &Tensor| x.conv2d(w, Some(b), [1, 1], [0, 0], [1, 1], 2);
        let q = quantize_weight(&weight);
        let exact = conv(&weight, &bias);
        let error = |t: Tensor| f64::try_from((t - &exact).abs().max()).unwrap();
        let corrected = corrected_bias(&weight, &q, Some(&bias), &mean, 2).unwrap();
        assert!(error(conv(&q.dequantize(), &bias)) > 1e-3);
        assert!(error(conv(&q.dequantize(), &corrected)) < 1e-5);
        assert!(corrected_bias(&weight, &q, None, &mean[..5], 2).unwrap_err().contains("5 channel means for 6"));
    }

    #[test]
    fn quantized_padding_is_zero_padding() {
        let x = test_data::rand(&[1, 3, 5, 4], 402) - 0.25;
        let q = QParams::covering(Range { lo: -0.25, hi: 0.75 }).quantize(&x);
        let pad = [0, 1, 2, 1];
        let expected = q.dequantize().constant_pad_nd(pad);
        let got = zero_pad(&q, pad);
        assert!(is_quantized(&got));
        assert_eq!(got.size(), [1, 3, 8, 5]);
        assert_eq!(f64::try_from((got.dequantize() - expected).abs().max()).unwrap(), 0.0);
    }

    #[test]
    fn weights_round_trip_within_half_a_level_per_channel() {
        let w =
            test_data::randn(&[4, 3, 3, 3], 403) * Tensor::from_slice(&[0.01f32, 1.0, 10.0, 0.0]).view([4, 1, 1, 1]);
        let q = quantize_weight(&w);
        let back = q.dequantize();
        for c in 0..4 {
            let amax = f64::try_from(w.get(c).abs().max()).unwrap();
            let err = f64::try_from((back.get(c) - w.get(c)).abs().max()).unwrap();
            assert!(err <= amax / 127.5 / 2.0 + 1e-7, "channel {c}: error {err} for a largest magnitude {amax}");
        }
    }
}
