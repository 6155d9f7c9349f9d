//! The library's error type. Every message names the thing (path, model, key) and says what to do next,
//! on one line, so the CLI can print it as it is.
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
    #[error("cannot read image {path}: {reason}")]
    Image { path: PathBuf, reason: String },

    #[error("label file {path}: {reason}")]
    Labels { path: PathBuf, reason: String },

    #[error("{0}")]
    Usage(String),

    #[error("no weights for {model}: expected {expected}; {hint}, or pass --weights FILE")]
    WeightsNotFound { model: &'static str, expected: PathBuf, hint: String },

    #[error("weights file {path}: {reason}")]
    Weights { path: PathBuf, reason: String },

    #[error("cannot download {url}: {reason}")]
    Download { url: String, reason: String },

    #[error("cannot write {path}: {reason}")]
    Output { path: PathBuf, reason: String },

    #[error("{0}")]
    Display(String),

    #[error("libtorch: {}", first_line(&.0.to_string()))]
    Torch(#[from] tch::TchError),

    #[error("OpenCV: {0}")]
    OpenCv(#[from] opencv::Error),
}

/// libtorch's messages end with a C++ backtrace; the first line says what went wrong.
pub fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or("").trim()
}

impl Error {
    /// The process exit code that this error maps to (see [`exit`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Image { .. } | Error::Labels { .. } | Error::Usage(_) | Error::Display(_) => exit::USAGE,
            Error::WeightsNotFound { .. } | Error::Weights { .. } | Error::Download { .. } => exit::WEIGHTS,
            Error::Output { .. } | Error::Torch(_) | Error::OpenCv(_) => exit::FAILURE,
        }
    }

    pub fn weights(path: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        Error::Weights { path: path.into(), reason: reason.to_string() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
