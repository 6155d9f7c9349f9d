//! Fetching a weights file into the cache, as torchvision's `load_state_dict_from_url` does, but safely:
//! the bytes go to a temporary file in the cache folder and are hashed on the way; only a complete file whose
//! SHA-256 matches is renamed to the official name. An interrupted, failed, corrupt or concurrent download
//! therefore never leaves a partial file under that name, and two processes fetching the same file both end
//! with a whole one.
use crate::error::{Error, Result};
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
    /// torchvision's rule: the hex digits between the last `-` and the extension of the file name.
    pub fn from_file_name(name: &str) -> Option<Checksum> {
        let stem = name.split('.').next()?;
        let (_, hex) = stem.rsplit_once('-')?;
        (hex.len() >= 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Checksum::Prefix(hex.to_ascii_lowercase()))
    }

    pub fn matches(&self, digest: &str) -> bool {
        match self {
            Checksum::Full(full) => digest.eq_ignore_ascii_case(full),
            Checksum::Prefix(prefix) => digest.starts_with(prefix.as_str()),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Checksum::Full(full) => full.clone(),
            Checksum::Prefix(prefix) => format!("{prefix}…"),
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
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Network settings: timeouts (for connecting, and for each read, so a stalled server is given up on).
#[derive(Debug, Clone, Copy)]
pub struct Network {
    pub timeout: Duration,
    /// Show a progress bar on stderr (only drawn when stderr is a terminal).
    pub progress: bool,
}

/// Downloads `url` to `dest`, checking `checksum` before the file takes its final name.
pub fn fetch(url: &str, dest: &Path, checksum: &Checksum, net: Network) -> Result<()> {
    let fail = |reason: String| Error::Download { url: url.to_string(), reason };
    let dir = dest.parent().expect("a cache file has a folder");
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("cannot create the cache folder {}: {e}", dir.display())))?;
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(net.timeout)
        .timeout_read(net.timeout)
        .try_proxy_from_env(true)
        .build();
    let response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::Status(code, r) => fail(format!("the server answered HTTP {code} {}", r.status_text())),
        ureq::Error::Transport(t) => {
            let cause = std::error::Error::source(&t).map(|c| format!(": {c}")).unwrap_or_default();
            let message = t.message().map(|m| format!(": {m}")).unwrap_or_default();
            fail(format!(
                "{}{message}{cause}; check the network, or point {} at a mirror, or pass --weights FILE",
                t.kind(),
                super::hub::ENV_BASE_URL
            ))
        }
    })?;
    let expected_len: Option<u64> = response.header("Content-Length").and_then(|v| v.parse().ok());

    let name = dest.file_name().and_then(|n| n.to_str()).unwrap_or("weights");
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.partial-"))
        .tempfile_in(dir)
        .map_err(|e| fail(format!("cannot create a file in {}: {e}", dir.display())))?;
    let _tracked = crate::cleanup::track(tmp.path());
    let bar = progress_bar(net.progress, expected_len);
    let mut reader = response.into_reader();
    let mut hasher = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    let mut received: u64 = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(fail(format!("the transfer failed after {received} bytes: {e}"))),
        };
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n]).map_err(|e| fail(format!("cannot write {}: {e}", tmp.path().display())))?;
        received += n as u64;
        bar.set_position(received);
    }
    bar.finish_and_clear();
    if let Some(len) = expected_len.filter(|&len| len != received) {
        return Err(fail(format!("the transfer stopped after {received} of {len} bytes; try again")));
    }
    let digest = hex(&hasher.finalize());
    if !checksum.matches(&digest) {
        return Err(fail(format!(
            "its SHA-256 is {digest}, not {} (corrupt, or not the official file); nothing was kept",
            checksum.describe()
        )));
    }
    tmp.as_file().sync_all().map_err(|e| fail(e.to_string()))?;
    tmp.persist(dest).map_err(|e| fail(format!("cannot move it to {}: {}", dest.display(), e.error)))?;
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
        assert_eq!(Checksum::from_file_name("model.pth"), None);
        let c = Checksum::Prefix("0676ba61".into());
        assert!(c.matches("0676ba61ffff"));
        assert!(!c.matches("0676ba62ffff"));
    }
}
