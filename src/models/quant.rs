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

    fn union(self, other: Range) -> Range {
        Range { lo: self.lo.min(other.lo), hi: self.hi.max(other.hi) }
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
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<Ranges>>);

impl Recorder {
    /// Widens `name`'s range at `point` to include `t`.
    pub fn record(&self, name: &str, point: Point, t: &Tensor) {
        let Some(range) = Range::of(t) else { return };
        let mut ranges = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let entry = ranges.entry(name.to_string()).or_default();
        let slot = match point {
            Point::Input => &mut entry.input,
            Point::Output => &mut entry.output,
            Point::Sum => &mut entry.sum,
        };
        *slot = Some(slot.map_or(range, |r| r.union(range)));
    }

    pub fn ranges(&self) -> Ranges {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
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

/// Whether `t` holds quantized values.
pub fn is_quantized(t: &Tensor) -> bool {
    matches!(t.kind(), Kind::QUInt8 | Kind::QInt8 | Kind::QInt32)
}

/// A convolution weight in qint8, symmetric, one scale per output channel: the largest magnitude of each
/// channel maps to 127.5 levels, as PyTorch's per-channel symmetric observer does.
pub fn quantize_weight(weight: &Tensor) -> Tensor {
    let weight = weight.to_kind(Kind::Float).contiguous();
    let channels = weight.size()[0];
    let scales = (weight.abs().amax([1, 2, 3], false).to_kind(Kind::Double) / 127.5).clamp_min(f64::from(f32::EPSILON));
    let zeros = Tensor::zeros([channels], (Kind::Int64, Device::Cpu));
    weight.quantize_per_channel(&scales, &zeros, 0, Kind::QInt8)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn recorded_ranges_are_the_union_over_calls() {
        let r = Recorder::default();
        r.record("conv", Point::Output, &Tensor::from_slice(&[0.0f32, 2.0]));
        r.record("conv", Point::Output, &Tensor::from_slice(&[-1.0f32, 1.0]));
        r.record("conv", Point::Sum, &Tensor::from_slice(&[5.0f32]));
        let ranges = r.ranges();
        assert_eq!(ranges["conv"].output, Some(Range { lo: -1.0, hi: 2.0 }));
        assert_eq!(ranges["conv"].sum, Some(Range { lo: 5.0, hi: 5.0 }));
        assert_eq!(ranges["conv"].input, None);
    }

    #[test]
    fn weights_round_trip_within_half_a_level_per_channel() {
        tch::manual_seed(5);
        let w = Tensor::randn([4, 3, 3, 3], (Kind::Float, Device::Cpu))
            * Tensor::from_slice(&[0.01f32, 1.0, 10.0, 0.0]).view([4, 1, 1, 1]);
        let q = quantize_weight(&w);
        let back = q.dequantize();
        for c in 0..4 {
            let amax = f64::try_from(w.get(c).abs().max()).unwrap();
            let err = f64::try_from((back.get(c) - w.get(c)).abs().max()).unwrap();
            assert!(err <= amax / 127.5 / 2.0 + 1e-7, "channel {c}: error {err} for a largest magnitude {amax}");
        }
    }
}
