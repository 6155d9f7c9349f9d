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
/// The WordNet ids of the ImageNet-1k classes, one per line, sorted: line i is class i, the synset whose
/// lemmas are line i of [`IN_LABELS`] (scripts/make_labels.py builds both from the same list).
pub const IMAGENET_WNIDS: &str = include_str!("../labels/imagenet_wnids.txt");

/// The seed's `DEVICE`: CUDA when libtorch sees a GPU, else the CPU.
pub fn default_device() -> tch::Device {
    tch::Device::cuda_if_available()
}
