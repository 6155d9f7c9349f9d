//! The seed's configuration (`config.py` of the original tutorial), as constants.

/// Side of the square the seed squashes every image to, for every model.
pub const IMAGE_SIZE: i64 = 224;
/// ImageNet channel means (RGB).
pub const MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (RGB).
pub const STD: [f64; 3] = [0.229, 0.224, 0.225];
/// The ImageNet-1k class names, one per line, in torchvision's class order. Built into the binary so that the
/// tool works from any directory; `--labels` points elsewhere.
pub const IN_LABELS: &str = include_str!("../labels/ilsvrc2012_wordnet_lemmas.txt");
/// Where [`IN_LABELS`] comes from, for messages.
pub const IN_LABELS_NAME: &str = "ilsvrc2012_wordnet_lemmas.txt";

/// The seed's `DEVICE`: CUDA when libtorch sees a GPU, else the CPU.
pub fn default_device() -> tch::Device {
    tch::Device::cuda_if_available()
}
