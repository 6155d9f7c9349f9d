//! Class names: one per line, stripped, like the seed's `dict(enumerate(open(IN_LABELS)))` + `.strip()`.
use crate::error::{Error, LabelsError, Result};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Labels {
    names: Vec<String>,
}

impl Labels {
    /// The ImageNet-1k labels built into the crate.
    pub fn imagenet() -> Self {
        Self::parse(crate::config::IN_LABELS)
    }

    /// Reads a label file: one class per line; empty trailing lines are ignored.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Labels { path: path.to_path_buf(), source: LabelsError::Io(e) })?;
        Ok(Self::parse(&text))
    }

    fn parse(text: &str) -> Self {
        let mut names: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
        while names.last().is_some_and(|l| l.is_empty()) {
            names.pop();
        }
        Labels { names }
    }

    /// Fails unless there is exactly one label per model output.
    pub fn check_count(&self, classes: i64, source: &Path) -> Result<()> {
        if self.names.len() as i64 == classes {
            return Ok(());
        }
        Err(Error::Labels {
            path: source.to_path_buf(),
            source: LabelsError::Count { labels: self.names.len(), classes },
        })
    }

    pub fn get(&self, index: usize) -> &str {
        &self.names[index]
    }

    /// The classes that `name` names: an index, or one of the comma-separated names of a label (ImageNet's
    /// `tiger_cat` matches `tiger cat` and `Tiger_Cat`: case and underscores against spaces do not matter).
    /// A name can fit several classes (ImageNet has two cranes).
    pub fn find(&self, name: &str) -> Vec<usize> {
        if let Ok(index) = name.trim().parse::<usize>() {
            return if index < self.names.len() { vec![index] } else { Vec::new() };
        }
        let key = |s: &str| s.trim().replace('_', " ").to_lowercase();
        let wanted = key(name);
        let fits = |label: &String| label == name || label.split(',').any(|n| key(n) == wanted);
        (0..self.names.len()).filter(|&i| fits(&self.names[i])).collect()
    }

    /// The one class that `name` names, or why there is none, in words: a WordNet id (`n01440764`; only with
    /// `wnids`, for the built-in ImageNet labels), a name or the whole line of a label ([`Labels::find`]), or an
    /// index.
    pub fn class(&self, name: &str, wnids: bool) -> std::result::Result<usize, String> {
        let name = name.trim();
        if wnids && is_wnid(name) {
            return imagenet_class(name).ok_or_else(|| format!("{name} is not the WordNet id of an ImageNet-1k class"));
        }
        let example = self.get(0).split(',').next().unwrap_or_default();
        let last = self.len().saturating_sub(1);
        match self.find(name).as_slice() {
            [class] => Ok(*class),
            [] if wnids => Err(format!(
                "'{name}' is not a class; give a WordNet id (n01440764), a label name ({example}) or an index from 0 \
                 to {last}"
            )),
            [] => Err(format!("'{name}' is not a class; give a label name ({example}) or an index from 0 to {last}")),
            several => Err(format!(
                "'{name}' names {} classes ({}); give {}one index",
                several.len(),
                several.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", "),
                if wnids { "its WordNet id or " } else { "" }
            )),
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The ImageNet-1k WordNet ids in class order (sorted): `IMAGENET_WNIDS[i]` is class i.
static IMAGENET_WNIDS: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| crate::config::IMAGENET_WNIDS.lines().collect());

/// The ImageNet-1k class of a WordNet id, e.g. `n01440764` (tench) → 0; `None` for any other id.
pub fn imagenet_class(wnid: &str) -> Option<usize> {
    IMAGENET_WNIDS.binary_search(&wnid).ok()
}

/// The WordNet id of an ImageNet-1k class, e.g. 0 → `n01440764`.
pub fn imagenet_wnid(class: usize) -> Option<&'static str> {
    IMAGENET_WNIDS.get(class).copied()
}

/// Whether `name` has the form of a WordNet noun id: `n` and eight digits.
pub fn is_wnid(name: &str) -> bool {
    name.len() == 9 && name.starts_with('n') && name[1..].bytes().all(|b| b.is_ascii_digit())
}

/// Where labels come from: the built-in ImageNet file or a file given by the user.
#[derive(Debug, Clone, Default)]
pub enum LabelSource {
    #[default]
    ImageNet,
    File(PathBuf),
}

impl LabelSource {
    pub fn load(&self) -> Result<Labels> {
        match self {
            LabelSource::ImageNet => Ok(Labels::imagenet()),
            LabelSource::File(path) => Labels::from_file(path),
        }
    }

    /// A path to name in messages.
    pub fn path(&self) -> PathBuf {
        match self {
            LabelSource::ImageNet => PathBuf::from(crate::config::IN_LABELS_NAME),
            LabelSource::File(path) => path.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_takes_an_index_or_any_name_of_a_label() {
        let labels = Labels::imagenet();
        assert_eq!(labels.find("282"), vec![282]);
        assert_eq!(labels.find("tiger cat"), vec![282]);
        assert_eq!(labels.find("Tiger_Cat"), vec![282]);
        assert_eq!(labels.find("Tinca tinca"), vec![0]);
        assert_eq!(labels.find("crane"), vec![134, 517]);
        assert!(labels.find("1000").is_empty());
        assert!(labels.find("unicorn").is_empty());
    }

    #[test]
    fn wordnet_ids_are_the_sorted_list_of_the_labels_classes() {
        let wnids: Vec<&str> = crate::config::IMAGENET_WNIDS.lines().collect();
        assert_eq!(wnids.len(), Labels::imagenet().len());
        assert!(wnids.windows(2).all(|w| w[0] < w[1]), "sorted, no repeats");
        assert!(wnids.iter().all(|w| is_wnid(w)));
        let labels = Labels::imagenet();
        for (wnid, label) in [("n01440764", "tench"), ("n02123159", "tiger_cat"), ("n15075141", "toilet_tissue")] {
            let class = imagenet_class(wnid).unwrap();
            assert!(labels.get(class).starts_with(label), "{wnid}: {}", labels.get(class));
            assert_eq!(imagenet_wnid(class), Some(wnid));
        }
        assert_eq!(imagenet_class("n00007846"), None, "person: not an ImageNet-1k class");
        assert!(!is_wnid("n0144076") && !is_wnid("tench") && !is_wnid("x01440764"));
    }
}
