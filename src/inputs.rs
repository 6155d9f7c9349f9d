//! The images to classify: files as given, and every image file under a directory, recursively, in a stable
//! (sorted) order.
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// File extensions OpenCV reads that we pick up inside directories (any file given by name is tried).
pub const IMAGE_EXTENSIONS: &[&str] =
    &["jpg", "jpeg", "jpe", "png", "bmp", "dib", "tif", "tiff", "webp", "ppm", "pgm", "pbm", "pnm", "sr", "ras", "jp2"];

/// One image to classify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub path: PathBuf,
    /// Its path relative to the directory it was found in (its file name when given directly): where its
    /// annotated copy goes under an output directory.
    pub relative: PathBuf,
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Expands the command line's paths. A missing path is not an error here: it is reported when it is read,
/// with the others still classified.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found)?;
            if found.is_empty() {
                return Err(Error::Image {
                    path: path.clone(),
                    reason: format!(
                        "the folder has no image files ({}); give an image or a folder of them",
                        IMAGE_EXTENSIONS[..4].join(", ")
                    ),
                });
            }
            found.sort();
            inputs.extend(found.into_iter().map(|p| {
                let relative = p.strip_prefix(path).unwrap_or(&p).to_path_buf();
                Input { path: p, relative }
            }));
        } else {
            let relative = PathBuf::from(path.file_name().unwrap_or(path.as_os_str()));
            inputs.push(Input { path: path.clone(), relative });
        }
    }
    Ok(inputs)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::Image { path: dir.to_path_buf(), reason: e.to_string() })?;
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, found)?,
            Ok(t) if t.is_file() && is_image(&path) => found.push(path),
            _ => {} // symlinks are not followed (no cycles), other files are not images
        }
    }
    Ok(())
}
