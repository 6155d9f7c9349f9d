//! [`Error`]: why a file is not read. Each variant's message is one line in the terms of the file ("its pickle
//! …"), for a caller to prefix with the file's name.

/// Why [`crate::parse`] or [`crate::pickle::load`] refuses a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Neither container of `torch.save` (zip or legacy): another format, or a tar/gzip archive of torch < 0.2.
    #[error("{0}")]
    NotACheckpoint(String),
    /// A `torch.save` file whose object is not a state dict (nor a checkpoint that holds one).
    #[error("{0}")]
    NotAStateDict(String),
    /// A valid file that this reader does not read (saved big-endian, pre-1.0 storage views).
    #[error("{0}")]
    Unsupported(String),
    /// The pickle names a callable that a state dict never needs: the file may be malicious. Nothing was called.
    #[error(
        "refused to load: its pickle asks for the Python callable `{module}.{name}`, which a state dict never \
         needs (the file may be malicious); only tensors and OrderedDict are accepted"
    )]
    Refused { module: String, name: String },
    /// Reading the file would allocate more than the [`crate::pickle::Budget`] of `limit` bytes: a bomb.
    #[error(
        "its pickle needs more than {} to read, far more than any state dict (the file may be malicious)",
        human_bytes(*limit)
    )]
    OverBudget { limit: usize },
    /// A pickle that ends (or declares a length that ends) past the data, at byte `at` of the pickle.
    #[error("its pickle is truncated at byte {at} (the file is incomplete or corrupt)")]
    Truncated { at: usize },
    /// A legacy file's storage `key` runs past the end of the file.
    #[error("its storage {key} runs past the end of the file (the file is truncated)")]
    StorageTruncated { key: String },
    /// A tensor whose strided view reaches outside its storage (of `numel` elements): a hostile size or stride.
    #[error(
        "its tensor {name} (size {size:?}, stride {stride:?}, offset {offset}) reaches past its storage of \
         {numel} elements"
    )]
    ViewOutOfBounds { name: String, size: Vec<i64>, stride: Vec<i64>, offset: i64, numel: i64 },
    /// Any other structural fault of the container or the pickle.
    #[error("{0}")]
    Malformed(String),
    /// An error in one of the pickles of a legacy file (`part`: "magic number", "state dict", …).
    #[error("{source} (in its {part})")]
    InLegacyPickle {
        part: &'static str,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// The error itself, or for [`Error::InLegacyPickle`] the error in that pickle: what to match on.
    pub fn innermost(&self) -> &Error {
        match self {
            Error::InLegacyPickle { source, .. } => source.innermost(),
            other => other,
        }
    }

    /// The file may be malicious: a refused callable or a bomb.
    pub fn is_hostile(&self) -> bool {
        matches!(self.innermost(), Error::Refused { .. } | Error::OverBudget { .. })
    }

    pub(crate) fn malformed(message: impl Into<String>) -> Error {
        Error::Malformed(message.into())
    }
}

/// `bytes` rounded down to whole MiB, KiB or bytes, so that "more than" holds.
fn human_bytes(bytes: usize) -> String {
    match bytes {
        l if l >= 1 << 20 => format!("{} MiB", l >> 20),
        l if l >= 1 << 10 => format!("{} KiB", l >> 10),
        l => format!("{l} bytes"),
    }
}
