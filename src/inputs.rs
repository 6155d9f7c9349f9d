//! The images to classify: files as given, and every image file under a directory, recursively, following
//! symbolic links, in a stable (sorted) order.
use crate::error::{Error, ImageError, Result};
use crate::imagesize::Format;
use crate::preprocess;
use opencv::core::Mat;
use std::path::{Path, PathBuf};

/// One image to classify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub path: PathBuf,
    /// Its path relative to the directory it was found in (its file name when given directly): where its
    /// annotated copy goes under an output directory.
    pub relative: PathBuf,
    /// Why the directory walk could not look at it (a symbolic link loop, an unreadable folder): reading it
    /// fails with this reason, so that it is reported in its place.
    pub unreadable: Option<Unreadable>,
}

/// Why the directory walk could not look at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// A symbolic link to `ancestor`, a folder above it: following it would loop.
    Loop { ancestor: PathBuf },
    /// The operating system's refusal: its error number where it gave one, else its kind.
    Io { kind: std::io::ErrorKind, os_code: Option<i32> },
}

impl Unreadable {
    fn to_error(&self) -> ImageError {
        match self {
            Unreadable::Loop { ancestor } => ImageError::SymlinkLoop { ancestor: ancestor.clone() },
            Unreadable::Io { kind, os_code } => ImageError::Inaccessible(match os_code {
                Some(code) => std::io::Error::from_raw_os_error(*code),
                None => std::io::Error::from(*kind),
            }),
        }
    }
}

impl Input {
    /// [`preprocess::read_image`], or the walk's reason why it cannot be read.
    pub fn read_image(&self) -> Result<Mat> {
        self.read_image_with_warnings().map(|(image, _)| image)
    }

    /// [`preprocess::read_image_with_warnings`], or the walk's reason why it cannot be read.
    pub fn read_image_with_warnings(&self) -> Result<(Mat, Vec<String>)> {
        match &self.unreadable {
            Some(why) => Err(Error::Image { path: self.path.clone(), source: why.to_error() }),
            None => preprocess::read_image_with_warnings(&self.path),
        }
    }
}

/// Whether a directory's file is picked up: its extension is one of a format decoded.
pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| Format::read_extensions().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Expands the command line's paths. A missing path is not an error here: it is reported when it is read,
/// with the others still classified.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = walk(path)?;
            if found.is_empty() {
                return Err(Error::Image { path: path.clone(), source: ImageError::NoImagesInFolder });
            }
            found.sort_by(|a, b| a.path.cmp(&b.path));
            inputs.extend(found);
        } else {
            let relative = PathBuf::from(path.file_name().unwrap_or(path.as_os_str()));
            inputs.push(Input { path: path.clone(), relative, unreadable: None });
        }
    }
    Ok(inputs)
}

/// The image files under `root`, symbolic links followed. What the walk cannot look at — a link back to a
/// folder above it, a folder it may not read, a broken link named as an image — becomes an input that fails
/// when read; only `root` itself unreadable is an error here.
fn walk(root: &Path) -> Result<Vec<Input>> {
    let input = |path: &Path, unreadable: Option<Unreadable>| Input {
        path: path.to_path_buf(),
        relative: path.strip_prefix(root).unwrap_or(path).to_path_buf(),
        unreadable,
    };
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(root).follow_links(true) {
        match entry {
            Ok(entry) if entry.file_type().is_file() && is_image(entry.path()) => found.push(input(entry.path(), None)),
            Ok(_) => {} // folders, and files that are not images
            Err(e) => {
                let Some(path) = e.path() else { continue };
                let path = path.to_path_buf();
                if e.depth() == 0 {
                    return Err(Error::Image { path: root.to_path_buf(), source: ImageError::Walk(e) });
                }
                let why = match (e.loop_ancestor(), e.io_error()) {
                    (Some(ancestor), _) => Unreadable::Loop { ancestor: ancestor.to_path_buf() },
                    (None, Some(io)) if path.is_dir() || is_image(&path) => {
                        Unreadable::Io { kind: io.kind(), os_code: io.raw_os_error() }
                    }
                    _ => continue, // a broken link, not named as an image
                };
                found.push(input(&path, Some(why)));
            }
        }
    }
    Ok(found)
}
