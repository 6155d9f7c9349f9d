//! The labelled images that `eval` measures: an ImageNet-style folder (one subfolder per class) or a CSV file
//! of `path,label` rows, each image with its class index. What is wrong with the data set itself (a missing
//! path, a class the labels do not have, a class folder without images, an empty CSV) is an error, found
//! before the model loads; an image that cannot be read is found when it is read, and counted as a failure.
use classify_image::error::{Error, ImageError, Result};
use classify_image::inputs::{self, Input};
use classify_image::Labels;
use std::path::{Path, PathBuf};

/// One image and its true class.
#[derive(Debug)]
pub struct Labelled {
    pub input: Input,
    pub class: usize,
}

/// How class names are read: by [`Labels::class`], with WordNet ids for the built-in ImageNet labels.
pub struct Classes<'a> {
    pub labels: &'a Labels,
    pub wnids: bool,
}

impl Classes<'_> {
    fn find(&self, name: &str) -> std::result::Result<usize, String> {
        self.labels.class(name, self.wnids)
    }
}

/// First fields that make the first row of a CSV file a header.
const HEADER_FIELDS: [&str; 4] = ["path", "image", "file", "filename"];

/// The images of `data` with their classes, in a stable order: a folder's classes by name and each class's
/// images by path, or a CSV file's rows in order.
pub fn read(data: &Path, classes: &Classes) -> Result<Vec<Labelled>> {
    let usage = |why: String| Error::Usage(format!("{}: {why}", data.display()));
    if data.is_dir() {
        folder(data, classes)
    } else if inputs::is_image(data) {
        Err(usage("an image; eval takes a folder of class folders or a CSV file of path,label rows".into()))
    } else if data.exists() {
        csv_file(data, classes)
    } else {
        Err(usage(
            "no such file or folder; give a folder with one subfolder per class, or a CSV file of path,label rows"
                .into(),
        ))
    }
}

/// ImageNet's layout: each subfolder is a class, named as [`Classes`] reads names, and holds that class's
/// images (recursively). Names starting with a dot are skipped; an image outside the class folders is an error.
fn folder(data: &Path, classes: &Classes) -> Result<Vec<Labelled>> {
    let usage = |why: String| Error::Usage(format!("{}: {why}", data.display()));
    let mut entries: Vec<PathBuf> = std::fs::read_dir(data)
        .and_then(|dir| dir.map(|e| e.map(|e| e.path())).collect())
        .map_err(|e| usage(e.to_string()))?;
    entries.retain(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')));
    entries.sort();
    if let Some(stray) = entries.iter().find(|p| !p.is_dir() && inputs::is_image(p)) {
        return Err(usage(format!(
            "{} is outside the class folders; ImageNet's layout puts each image in its class's subfolder",
            stray.display()
        )));
    }
    let class_dirs: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir()).collect();
    if class_dirs.is_empty() {
        return Err(usage(
            "no class folders; give a folder with one subfolder per class (named by WordNet id, label or index) \
             holding its images, or a CSV file of path,label rows"
                .into(),
        ));
    }
    let mut found = Vec::new();
    for dir in class_dirs {
        let name = dir.file_name().unwrap_or_default().to_string_lossy();
        let class =
            classes.find(&name).map_err(|why| Error::Usage(format!("class folder {}: {why}", dir.display())))?;
        let images = match inputs::expand(std::slice::from_ref(dir)) {
            Err(Error::Image { source: ImageError::NoImagesInFolder, .. }) => {
                return Err(Error::Usage(format!("class folder {}: no image files in it", dir.display())))
            }
            other => other?,
        };
        found.extend(images.into_iter().map(|input| Labelled { input, class }));
    }
    Ok(found)
}

/// Rows of `path,label`; paths relative to the file's folder; further columns ignored; a header row skipped.
fn csv_file(data: &Path, classes: &Classes) -> Result<Vec<Labelled>> {
    let usage = |why: String| Error::Usage(format!("{}: {why}", data.display()));
    let base = data.parent().unwrap_or(Path::new(""));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(data)
        .map_err(|e| usage(e.to_string()))?;
    let mut found = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|e| usage(format!("{e}; give a CSV file of path,label rows")))?;
        let line = record.position().map_or(row as u64 + 1, |p| p.line());
        let at_line = |why: String| usage(format!("line {line}: {why}"));
        let (path, label) = match (record.get(0).map(str::trim), record.get(1).map(str::trim)) {
            (Some(path), Some(label)) if !path.is_empty() => (path, label),
            _ => return Err(at_line("expected path,label".into())),
        };
        if row == 0 && HEADER_FIELDS.contains(&path.to_lowercase().as_str()) {
            continue;
        }
        let class = classes.find(label).map_err(at_line)?;
        let input = Input { path: base.join(path), relative: PathBuf::from(path), unreadable: None };
        found.push(Labelled { input, class });
    }
    if found.is_empty() {
        return Err(usage("no rows; give one path,label row per image".into()));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imagenet(labels: &Labels) -> Classes<'_> {
        Classes { labels, wnids: true }
    }

    #[test]
    fn class_names_are_wnids_names_or_indices() {
        let labels = Labels::imagenet();
        let classes = imagenet(&labels);
        assert_eq!(classes.find("n01440764"), Ok(0));
        assert_eq!(classes.find("tench"), Ok(0));
        assert_eq!(classes.find(" 282 "), Ok(282));
        assert_eq!(classes.find("maillot, tank_suit"), Ok(639), "a whole label line is one class");
        let err = classes.find("crane").unwrap_err();
        assert!(err.contains("134, 517") && err.contains("WordNet id"), "{err}");
        assert!(classes.find("n00007846").unwrap_err().contains("not the WordNet id of an ImageNet-1k class"));
        assert!(classes.find("unicorn").unwrap_err().contains("index from 0 to 999"));
        let custom = Classes { labels: &labels, wnids: false };
        assert!(custom.find("n01440764").is_err(), "not a line of the label file");
    }

    #[test]
    fn folders_and_csv_files_give_the_same_images() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        for (class, files) in [("n01440764", ["a.jpg", "b.png"]), ("goldfish", ["c.jpg", "sub/d.jpg"])] {
            for f in files {
                let path = data.join(class).join(f);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, b"").unwrap();
            }
        }
        std::fs::write(data.join("README.md"), "not an image").unwrap();
        std::fs::create_dir(data.join(".cache")).unwrap();
        let labels = Labels::imagenet();
        let classes = imagenet(&labels);
        let found = read(&data, &classes).unwrap();
        let got: Vec<(String, usize)> =
            found.iter().map(|l| (l.input.relative.display().to_string(), l.class)).collect();
        let want = [("c.jpg", 1), ("sub/d.jpg", 1), ("a.jpg", 0), ("b.png", 0)];
        assert_eq!(got, want.map(|(p, c)| (p.to_string(), c)), "goldfish < n01440764 by name");

        let csv = data.join("list.csv");
        std::fs::write(&csv, "path,label,note\ngoldfish/c.jpg,1,x\nn01440764/a.jpg,tench\n\n/abs/e.jpg,n01443537\n")
            .unwrap();
        let rows = read(&csv, &classes).unwrap();
        let got: Vec<(PathBuf, usize)> = rows.iter().map(|l| (l.input.path.clone(), l.class)).collect();
        assert_eq!(
            got,
            vec![(data.join("goldfish/c.jpg"), 1), (data.join("n01440764/a.jpg"), 0), ("/abs/e.jpg".into(), 1)]
        );
    }

    #[test]
    fn what_is_wrong_with_the_data_set_is_one_line_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let labels = Labels::imagenet();
        let classes = imagenet(&labels);
        let err = |path: &Path| {
            let e = read(path, &classes).unwrap_err();
            assert!(matches!(e, Error::Usage(_)), "{e:?}");
            let message = e.to_string();
            assert!(!message.contains('\n'), "{message}");
            message
        };
        assert!(err(&dir.path().join("missing")).contains("no such file or folder"));
        assert!(err(dir.path()).contains("no class folders"));
        std::fs::create_dir(dir.path().join("tench")).unwrap();
        assert!(err(dir.path()).contains("class folder") && err(dir.path()).contains("no image files"));
        std::fs::write(dir.path().join("tench/x.jpg"), b"").unwrap();
        std::fs::create_dir(dir.path().join("unicorn")).unwrap();
        let message = err(dir.path());
        assert!(message.contains("unicorn") && message.contains("is not a class"), "{message}");
        std::fs::remove_dir(dir.path().join("unicorn")).unwrap();
        std::fs::write(dir.path().join("stray.jpg"), b"").unwrap();
        assert!(err(dir.path()).contains("outside the class folders"));
        assert!(err(&dir.path().join("stray.jpg")).contains("an image"));
        let csv = dir.path().join("l.csv");
        for (text, why) in [
            ("", "no rows"),
            ("path,label\n", "no rows"),
            ("a.jpg\n", "line 1: expected"),
            ("a.jpg,tench\nb.jpg,unicorn\n", "line 2: 'unicorn'"),
        ] {
            std::fs::write(&csv, text).unwrap();
            let message = err(&csv);
            assert!(message.contains(why), "{text:?}: {message}");
        }
    }
}
