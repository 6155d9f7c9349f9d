//! Fetching a weights file into the cache, as torchvision's `load_state_dict_from_url` does, but safely:
//! the bytes go to a temporary file in the cache folder and are hashed on the way; only a complete file whose
//! SHA-256 matches is renamed to the official name. An interrupted, failed, corrupt or concurrent download
//! therefore never leaves a partial file under that name, and two processes fetching the same file both end
//! with a whole one.
use crate::error::{DownloadError, Error, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// What a file's SHA-256 must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checksum {
    /// The whole hex digest.
    Full(String),
    /// The leading hex digits, as torchvision's file names carry them (`resnet50-0676ba61.pth`).
    Prefix(String),
}

impl Checksum {
    /// torchvision's rule (`HASH_REGEX = r"-([a-f0-9]*)\."`, searched): the first run of hex digits between a
    /// `-` and a `.` of the file name (`resnet50-0676ba61.pth`; `shufflenetv2_x0.5-f707e7126e.pth`, whose
    /// name has a dot before the hash), at least 6 of them.
    pub fn from_file_name(name: &str) -> Option<Checksum> {
        name.match_indices('-').find_map(|(at, _)| {
            let rest = &name[at + 1..];
            let hex = &rest[..rest.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(rest.len())];
            (rest[hex.len()..].starts_with('.') && hex.len() >= 6).then(|| Checksum::Prefix(hex.to_ascii_lowercase()))
        })
    }

    pub fn matches(&self, digest: &str) -> bool {
        match self {
            Checksum::Full(full) => digest.eq_ignore_ascii_case(full),
            Checksum::Prefix(prefix) => digest.starts_with(prefix.as_str()),
        }
    }

    /// The digest, or its prefix followed by `…`.
    pub fn describe(&self) -> String {
        self.to_string()
    }
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Checksum::Full(full) => f.write_str(full),
            Checksum::Prefix(prefix) => write!(f, "{prefix}…"),
        }
    }
}

/// The SHA-256 of a file, in lowercase hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// How a transfer runs: its timeout (for connecting, and for each read, so a stalled server is given up on)
/// and whether it shows its progress.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    pub timeout: Duration,
    /// Show a progress bar on stderr (only drawn when stderr is a terminal).
    pub progress: bool,
}

/// Downloads `url` to `dest`, checking `checksum` before the file takes its final name.
pub fn download_verified(url: &str, dest: &Path, checksum: &Checksum, transfer: Transfer) -> Result<()> {
    let fail = |source: DownloadError| Error::Download { url: url.to_string(), source };
    let dir = dest.parent().expect("a cache file has a folder");
    std::fs::create_dir_all(dir).map_err(|source| fail(DownloadError::CacheFolder { dir: dir.into(), source }))?;
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(transfer.timeout)
        .timeout_read(transfer.timeout)
        .try_proxy_from_env(true)
        .build();
    let response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Status(code, r) => fail(DownloadError::Http { code, status: r.status_text().to_string() }),
        ureq::Error::Transport(t) => fail(DownloadError::Transport(Box::new(t))),
    })?;
    let expected_len: Option<u64> = response.header("Content-Length").and_then(|v| v.parse().ok());

    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("weights");
    let (mut tmp, _tracked) = crate::cleanup::create_tracked(
        || tempfile::Builder::new().prefix(&format!(".{name}.partial-")).tempfile_in(dir),
        |tmp| tmp.path(),
    )
    .map_err(|source| fail(DownloadError::TempFile { dir: dir.into(), source }))?;
    let write_error = |path: &Path, source| fail(DownloadError::Write { path: path.into(), source });
    let bar = progress_bar(transfer.progress, expected_len);
    let mut reader = response.into_reader();
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    let mut received: u64 = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(fail(DownloadError::Read { received, source })),
        };
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n]).map_err(|e| write_error(tmp.path(), e))?;
        received += n as u64;
        bar.set_position(received);
    }
    bar.finish_and_clear();
    if let Some(expected) = expected_len.filter(|&len| len != received) {
        return Err(fail(DownloadError::Truncated { received, expected }));
    }
    let digest = hex::encode(hasher.finalize());
    if !checksum.matches(&digest) {
        return Err(fail(DownloadError::Checksum { digest, expected: checksum.clone() }));
    }
    tmp.as_file().sync_all().map_err(|e| write_error(tmp.path(), e))?;
    tmp.persist(dest).map_err(|e| fail(DownloadError::Persist { dest: dest.into(), source: e.error }))?;
    Ok(())
}

fn progress_bar(enabled: bool, len: Option<u64>) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    if !enabled {
        return ProgressBar::hidden();
    }
    // indicatif draws nothing when stderr is not a terminal.
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
    let template = if len.is_some() {
        "{bytes}/{total_bytes} {wide_bar} {bytes_per_sec}, ETA {eta}"
    } else {
        "{bytes} {bytes_per_sec}"
    };
    bar.set_style(ProgressStyle::with_template(template).expect("a valid template"));
    bar
}

#[cfg(test)]
mod tests {
    use super::Checksum;

    #[test]
    fn checksum_prefix_from_torchvision_names() {
        assert_eq!(Checksum::from_file_name("resnet50-0676ba61.pth"), Some(Checksum::Prefix("0676ba61".into())));
        assert_eq!(
            Checksum::from_file_name("inception_v3_google-0cc3c7bd.pth"),
            Some(Checksum::Prefix("0cc3c7bd".into()))
        );
        assert_eq!(Checksum::from_file_name("alexnet-owt-7be5be79.pth"), Some(Checksum::Prefix("7be5be79".into())));
        // A dot before the hash.
        assert_eq!(
            Checksum::from_file_name("shufflenetv2_x0.5-f707e7126e.pth"),
            Some(Checksum::Prefix("f707e7126e".into()))
        );
        assert_eq!(
            Checksum::from_file_name("mnasnet0.5_top1_67.823-3ffadce67e.pth"),
            Some(Checksum::Prefix("3ffadce67e".into()))
        );
        assert_eq!(Checksum::from_file_name("model.pth"), None);
        assert_eq!(Checksum::from_file_name("model-v2.pth"), None);
        let c = Checksum::Prefix("0676ba61".into());
        assert!(c.matches("0676ba61ffff"));
        assert!(!c.matches("0676ba62ffff"));
    }
}
