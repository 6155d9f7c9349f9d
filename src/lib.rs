//! classify-image: classify images with ImageNet-pretrained CNNs (libtorch through `tch`), and annotate them
//! with OpenCV, as the PyImageSearch tutorial's `classify_image.py` does, with the same numbers.
//!
//! The flow runs one way: image ([`preprocess::read_image`]) → input tensor ([`preprocess::to_tensor`]) →
//! [`Classifier`] (a [`models`] network built from [`weights`]) → [`Scores`] → caption laid out by [`caption`]
//! and drawn by [`annotate`] → [`sink`] (a file or a window).
pub mod annotate;
pub mod calibration;
pub mod cam;
pub mod caption;
mod classifier;
pub mod cleanup;
pub mod config;
pub mod cpu;
pub mod error;
mod imagesize;
pub mod inputs;
pub mod labels;
pub mod media;
pub mod models;
pub mod preprocess;
pub mod resize;
pub mod sink;
pub mod weights;

pub use classifier::{check_precision, Classifier, Prediction, Scores};
pub use error::{Error, Result};
pub use labels::{LabelSource, Labels};
pub use models::{ModelId, MODELS};

/// Makes freed tensor memory stay with the process. glibc's malloc gives large freed blocks back to the kernel
/// (munmap, or a trim of the heap's top), and the next forward pass faults the same pages in again, zero-filled:
/// classifying a folder spent as much time in the kernel as in the network (`eval` on 750 photos with
/// EfficientNet-Lite0: 11 s user, 11 s system, 55 images/s), and a batch-1 forward pass of Lite0 spent more time
/// in page faults than in its convolutions. Keeping 512 MiB of padding at the heap's top lets the tensors reuse
/// their pages (0.2 s system, 170 images/s) at the same peak resident memory: padding never touched is never
/// resident. A program that classifies more than one image should call it once, before starting threads;
/// classify-image's own binary does.
pub fn keep_freed_memory() {
    // SAFETY: mallopt only sets a tunable of the allocator; callers run it before other threads exist.
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, 512 << 20);
    }
}
