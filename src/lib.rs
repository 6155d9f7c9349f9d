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
pub mod models;
pub mod preprocess;
pub mod sink;
pub mod weights;

pub use classifier::{Classifier, Prediction, Scores};
pub use error::{Error, Result};
pub use labels::{LabelSource, Labels};
pub use models::{ModelId, MODELS};
