//! int8 calibration: the range each activation of a network takes on photos, in a JSON file that int8 runs
//! reuse.
//!
//! `--precision int8` without a file calibrates once on the built-in photos (calibration/ in the repository: 100
//! photos that are not in evalset/) and caches the result beside the weights file, under a name made from the
//! model, the weights' SHA-256 and the photos' SHA-256, so that no other weights or photos can ever find it.
//! `classify-image quantize` calibrates on the user's own photos and writes the file `--calibration` reads.
use crate::error::{Error, OutputError, Result, WeightsError};
use crate::models::quant::Ranges;
use crate::models::{ModelId, Preset};
use crate::{preprocess, weights, Classifier};
use opencv::core::Mat;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

mod photos {
    include!(concat!(env!("OUT_DIR"), "/calibration_photos.rs"));
}

/// What a calibration file starts with.
pub const FORMAT: &str = "classify-image int8 calibration";
/// Its layout's version: a file of another version is not read.
pub const VERSION: u32 = 2;

/// A network's activation ranges, and what they were measured on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Calibration {
    pub format: String,
    pub version: u32,
    /// The model (its registry name).
    pub model: String,
    /// The SHA-256 of the weights file calibrated, in hex: ranges only fit the weights they were measured with.
    pub weights_sha256: String,
    /// How many photos, and the SHA-256 over their bytes in order (with each one's length).
    pub photos: usize,
    pub photos_sha256: String,
    /// Each convolution's ranges, by its name in the weights.
    pub ranges: Ranges,
}

/// The built-in calibration photos: (file name, JPEG bytes), in name order.
pub fn builtin_photos() -> &'static [(&'static str, &'static [u8])] {
    photos::PHOTOS
}

/// The digest a calibration records of its photos: SHA-256 over their bytes, each preceded by its length, in
/// order. Fed one photo at a time, so that a folder is hashed as it is read.
#[derive(Default)]
pub struct PhotosDigest(Sha256);

impl PhotosDigest {
    pub fn add(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// In lowercase hex.
    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// The built-in photos' [`PhotosDigest`], computed once.
pub fn builtin_digest() -> &'static str {
    static DIGEST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIGEST.get_or_init(|| {
        let mut digest = PhotosDigest::default();
        builtin_photos().iter().for_each(|(_, bytes)| digest.add(bytes));
        digest.finish()
    })
}

/// Calibrates `model` with `weights` on `photos` (already decoded), prepared as `preset` says. Runs in
/// float32 on the CPU, one photo at a time.
pub fn calibrate(
    model: ModelId,
    weights: &Path,
    weights_sha256: &str,
    preset: Preset,
    photos: &[Mat],
    photos_sha256: &str,
) -> Result<Calibration> {
    let (classifier, recorder) = Classifier::calibrating(model, weights)?;
    let classifier = classifier.with_preset(preset);
    // Two passes ([`crate::models::quant::Recorder`]): the extremes, then the histograms between them.
    for pass in 0..2 {
        if pass == 1 {
            recorder.start_histograms();
        }
        for photo in photos {
            let _logits = classifier.logits(photo)?;
        }
    }
    Ok(Calibration {
        format: FORMAT.into(),
        version: VERSION,
        model: model.name().into(),
        weights_sha256: weights_sha256.into(),
        photos: photos.len(),
        photos_sha256: photos_sha256.into(),
        ranges: recorder.ranges(),
    })
}

/// The built-in photos, decoded.
pub fn decode_builtin() -> Result<Vec<Mat>> {
    builtin_photos()
        .iter()
        .map(|(name, bytes)| {
            preprocess::decode(bytes).map_err(|source| Error::Image { path: PathBuf::from(name), source })
        })
        .collect()
}

/// Where the built-in calibration of `model` with the weights file `weights` (of SHA-256 `weights_sha256`) is
/// cached: beside the weights, named after the file, the model and a digest of the model name, the weights'
/// and the photos' SHA-256 and the format version.
pub fn cache_path(model: ModelId, weights: &Path, weights_sha256: &str) -> PathBuf {
    let mut key = Sha256::new();
    for part in [model.name(), weights_sha256, builtin_digest(), &VERSION.to_string()] {
        key.update(part.as_bytes());
        key.update([0]);
    }
    let key = hex::encode(key.finalize());
    let stem = weights.file_stem().map_or_else(|| "weights".into(), |s| s.to_string_lossy().into_owned());
    weights.with_file_name(format!("{stem}.{}.int8-{}.json", model.name(), &key[..16]))
}

/// The built-in calibration of `model` with `weights`: read from its cache file, or measured (announced on
/// stderr unless `quiet`) and cached. A cache that cannot be written (a read-only folder) is not an error:
/// the next run calibrates again.
pub fn builtin(model: ModelId, weights: &Path, quiet: bool) -> Result<Calibration> {
    let sha = weights_sha256(weights)?;
    let path = cache_path(model, weights, &sha);
    if let Ok(cached) = read(&path) {
        if cached.model == model.name() && cached.weights_sha256 == sha {
            return Ok(cached);
        }
    }
    if !quiet {
        eprintln!(
            "[INFO] calibrating {} for int8 on {} built-in photos (once: cached as {})",
            model.name(),
            builtin_photos().len(),
            path.display()
        );
    }
    let calibration = calibrate(
        model,
        weights,
        &sha,
        model.preset(crate::models::PresetKind::Seed),
        &decode_builtin()?,
        builtin_digest(),
    )?;
    if let Err(e) = write(&path, &calibration) {
        if !quiet {
            eprintln!("[WARN] the int8 calibration is not cached: {e}");
        }
    }
    Ok(calibration)
}

/// The SHA-256 of the weights file, in hex.
pub fn weights_sha256(path: &Path) -> Result<String> {
    weights::download::sha256_file(path).map_err(|e| Error::weights(path, WeightsError::Io(e)))
}

/// Reads a calibration file.
pub fn read(path: &Path) -> Result<Calibration> {
    let fail = |why: String| Error::Calibration { path: path.to_path_buf(), why };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let calibration: Calibration =
        serde_json::from_str(&text).map_err(|e| fail(format!("not a calibration file ({e})")))?;
    if calibration.format != FORMAT {
        return Err(fail(format!("not a calibration file (its format is {:?})", calibration.format)));
    }
    if calibration.version != VERSION {
        return Err(fail(format!(
            "made by another version of classify-image (layout {}, this one reads {VERSION}); run `classify-image quantize` again",
            calibration.version
        )));
    }
    if let Some((name, r)) = calibration.ranges.iter().find(|(_, r)| !r.is_valid()) {
        return Err(fail(if !r.means_are_finite() {
            format!("a channel mean of `{name}` is not a finite number")
        } else {
            format!("the range of `{name}` is not a finite range")
        }));
    }
    Ok(calibration)
}

/// Writes a calibration file atomically.
pub fn write(path: &Path, calibration: &Calibration) -> Result<()> {
    let mut json = serde_json::to_string_pretty(calibration)
        .map_err(|e| Error::output(path, OutputError::Io(std::io::Error::other(e))))?;
    json.push('\n');
    crate::sink::write_file(path, json.as_bytes())
}

/// Checks that `calibration` was made for `model` with the weights of SHA-256 `weights_sha256`.
pub fn check_fits(calibration: &Calibration, path: &Path, model: ModelId, weights_sha256: &str) -> Result<()> {
    let fail = |why: String| Error::Calibration { path: path.to_path_buf(), why };
    if calibration.model != model.name() {
        return Err(fail(format!("it calibrates {}, not {}", calibration.model, model.name())));
    }
    if calibration.weights_sha256 != weights_sha256 {
        return Err(fail(format!(
            "it was measured with other weights (SHA-256 {}…, these are {}…); run `classify-image quantize` with these weights",
            &calibration.weights_sha256.get(..12).unwrap_or(&calibration.weights_sha256),
            &weights_sha256[..12]
        )));
    }
    Ok(())
}
