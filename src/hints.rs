//! The command line's advice on an error: the flags and environment variables that fix it, and for missing
//! weights the models that can classify right away. The library's messages say what went wrong; this is the
//! one place that adds what to type.
use classify_image::error::{DownloadError, Error, OutputError, Unavailable, WeightsError};
use classify_image::models::{ModelId, Precision};
use classify_image::weights::hub::{self, ENV_BASE_URL, ENV_OFFLINE, ENV_SHA256SUMS};
use std::path::Path;

/// The line printed after `error: `.
pub fn message(e: &Error) -> String {
    let line = format!("{e}{}", flag_hint(e));
    match e {
        Error::WeightsNotFound { .. } | Error::Download { .. } => format!("{line}{}", weights_here()),
        _ => line,
    }
}

/// What the command line can do about `e`, to follow its message ("" when nothing).
fn flag_hint(e: &Error) -> String {
    match e {
        Error::WeightsNotFound { why: Unavailable::Offline { .. }, .. } => {
            format!(", or pass --weights FILE (offline mode: --offline or {ENV_OFFLINE})")
        }
        Error::WeightsNotFound { .. } => ", or pass --weights FILE".into(),
        Error::Download { source: DownloadError::Transport(_), .. } => {
            format!(", or point {ENV_BASE_URL} at a mirror, or pass --weights FILE")
        }
        Error::ChecksumList { .. } => format!("; point {ENV_SHA256SUMS} at a sha256sum file"),
        Error::Weights { path, source } => match source {
            WeightsError::Io(_) if !is_official_file(path) => "; check the --weights path".into(),
            WeightsError::NotTorchScript => "; a state dict goes to --weights with -m ARCH".into(),
            WeightsError::TorchScriptInput { .. } => "; check --size".into(),
            WeightsError::Missing { missing, .. } => {
                format!("; run `classify-image weights download {}`", missing.join(" "))
            }
            WeightsError::ChecksumMismatch { .. } => "; delete them and run `classify-image weights download`".into(),
            _ => String::new(),
        },
        Error::Precision { precision: Precision::Fp16, .. } => {
            "; use --precision bf16 on the CPU, or --device cuda".into()
        }
        Error::Precision { precision: Precision::Int8, .. } => "; use --device cpu".into(),
        Error::Calibration { .. } => " (--calibration)".into(),
        Error::Output { source: OutputError::IsInput, .. } => " (--output or --output-dir)".into(),
        Error::Output { source, .. } if source.is_bad_path() => " (--output)".into(),
        Error::NoDisplay(_) => "; pass --output FILE to write the annotated image instead".into(),
        Error::TooThin { .. } => " (--preset seed)".into(),
        Error::NoCamLayer => "; drop --explain, or give the architecture with -m MODEL --weights FILE".into(),
        _ => String::new(),
    }
}

/// Whether `path` is a model's official weights file, found in the cache or a package rather than given.
fn is_official_file(path: &Path) -> bool {
    ModelId::all().any(|m| hub::find_local(m).is_some_and(|local| local.path() == path))
}

/// For weights that are missing here: which models can classify right away.
fn weights_here() -> String {
    let here: Vec<&str> = ModelId::all().filter(|m| hub::find_local(*m).is_some()).map(ModelId::name).collect();
    match here.as_slice() {
        [] => String::new(),
        [one] => format!("; weights already here: {one} (-m {one})"),
        _ => format!("; weights already here: {}", here.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use classify_image::error::NoDisplay;

    #[test]
    fn the_flags_are_added_here() {
        let no_display = message(&Error::NoDisplay(NoDisplay::Unset));
        assert!(no_display.ends_with("; pass --output FILE to write the annotated image instead"), "{no_display}");
        let half = message(&Error::Precision { precision: Precision::Fp16, device: tch::Device::Cpu });
        assert!(half.contains("float16 needs a CUDA device") && half.contains("--precision bf16"), "{half}");
        let offline = Error::WeightsNotFound {
            model: "resnet50",
            expected: "/nowhere/resnet50-0676ba61.pth".into(),
            why: Unavailable::Offline { url: "https://example.org/resnet50-0676ba61.pth".into() },
        };
        let offline = message(&offline);
        assert!(offline.contains("--weights FILE") && offline.contains(ENV_OFFLINE), "{offline}");
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        let given = message(&Error::weights("/nowhere/mine.pth", WeightsError::Io(missing)));
        assert!(given.starts_with("weights file /nowhere/mine.pth: ") && given.ends_with("--weights path"), "{given}");
        let same = message(&Error::output("photo.png", OutputError::IsInput));
        assert!(same.contains("never overwritten") && same.contains("--output"), "{same}");
    }
}
