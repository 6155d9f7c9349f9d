//! `classify-image quantize`: int8 calibration on the user's photos, written where `--calibration` reads it.
use crate::cli::{Model, QuantizeRequest};
use crate::pipeline;
use classify_image::error::{exit, Error, ImageError, Result};
use classify_image::{calibration, inputs, preprocess};

pub fn run(req: QuantizeRequest) -> Result<i32> {
    let model = Model::Zoo { id: req.model, weights: req.weights.clone() };
    let weights = pipeline::weights_file(&model, &req.fetch)?;
    let (photos, digest, source) = if req.images.is_empty() {
        (calibration::decode_builtin()?, calibration::builtin_digest().to_string(), "built-in")
    } else {
        let (photos, digest) = read_photos(&req.images, req.quiet)?;
        (photos, digest, "given")
    };
    if !req.quiet {
        eprintln!("[INFO] calibrating {} on {} {source} photos...", req.model.name(), photos.len());
    }
    let sha = calibration::weights_sha256(&weights)?;
    let calibrated = calibration::calibrate(req.model, &weights, &sha, req.preset, &photos, &digest)?;
    calibration::write(&req.output, &calibrated)?;
    if !req.quiet {
        eprintln!(
            "[INFO] wrote {}: use it with -m {} --precision int8 --calibration {}",
            req.output.display(),
            req.model.name(),
            req.output.display()
        );
    }
    Ok(exit::OK)
}

/// Every readable photo under `paths` (an unreadable one is reported and skipped), and the SHA-256 over
/// their bytes in order. At least one must be readable.
fn read_photos(paths: &[std::path::PathBuf], quiet: bool) -> Result<(Vec<opencv::core::Mat>, String)> {
    let mut photos = Vec::new();
    let mut digest = calibration::PhotosDigest::default();
    for input in inputs::expand(paths)? {
        let bytes = std::fs::read(&input.path);
        match bytes.map_err(ImageError::Io).and_then(|b| preprocess::decode(&b).map(|m| (m, b))) {
            Ok((mat, bytes)) => {
                digest.add(&bytes);
                photos.push(mat);
            }
            Err(source) if !quiet || paths.len() > 1 => {
                eprintln!("[WARN] skipped: {}", Error::Image { path: input.path.clone(), source });
            }
            Err(_) => {}
        }
    }
    if photos.is_empty() {
        return Err(Error::Usage("no readable photo to calibrate on".into()));
    }
    Ok((photos, digest.finish()))
}
