//! `--resume FILE`: the ledger of a folder run that may be stopped and started again. FILE holds one JSON record
//! per image, the line that `--format jsonl` prints, appended with one write of the whole line as soon as the
//! image is done, so a run killed at any moment (SIGKILL included) leaves complete lines, and at most a cut-off
//! last one. On start the file is read; the images it records are skipped, matched by the record's `image`, the
//! path as this run names it.
//!
//! A failed image's record counts as done, as a classified one does: a file that cannot be read fails the same
//! way every time, and retrying it on every start would make a run that never finishes. The record says why it
//! failed; deleting that line makes the next run try the image again.
//!
//! While a run appends, it holds an exclusive lock (flock) on FILE, so a second run on the same file is refused
//! instead of writing between its lines. Records reach the operating system as each image finishes; a killed
//! process loses none, a machine that loses power may lose the last ones, and they are classified again.
use classify_image::error::{Error, OutputError, Result};
use classify_image::inputs::Input;
use classify_image::ModelId;
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// What a resume file already holds, read before the model loads; nothing is written yet.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    /// The file, open and locked, when it exists.
    file: Option<File>,
    /// The `image` of every record.
    done: HashSet<String>,
    records: usize,
    /// Bytes of complete lines, and of a cut-off last line after them.
    complete: u64,
    cut: u64,
}

/// A usage error about the resume file, one line.
fn usage(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::Usage(format!("--resume {}: {why}", path.display()))
}

impl Ledger {
    /// Reads `path` (a missing file records nothing). Every complete line must be a record of `model`; a line
    /// that is not, or another run appending to the file, is an error.
    pub fn read(path: &Path, model: &str) -> Result<Ledger> {
        let mut ledger =
            Ledger { path: path.to_path_buf(), file: None, done: HashSet::new(), records: 0, complete: 0, cut: 0 };
        let file = match OpenOptions::new().read(true).append(true).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ledger),
            Err(e) => return Err(usage(path, e)),
        };
        lock(&file, path)?;
        let mut reader = BufReader::new(&file);
        let mut line = Vec::new();
        for number in 1.. {
            line.clear();
            let read = reader.read_until(b'\n', &mut line).map_err(|e| usage(path, e))?;
            if read == 0 {
                break;
            }
            if line.last() != Some(&b'\n') {
                ledger.cut = read as u64;
                break;
            }
            ledger.complete += read as u64;
            if line.trim_ascii().is_empty() {
                continue;
            }
            let image = parse(&line, model).map_err(|why| usage(path, format!("line {number}: {why}")))?;
            ledger.done.insert(image);
            ledger.records += 1;
        }
        ledger.file = Some(file);
        Ok(ledger)
    }

    /// How many records the file holds.
    pub fn records(&self) -> usize {
        self.records
    }

    /// The inputs that the file does not record yet, in order.
    pub fn pending(&self, inputs: Vec<Input>) -> Vec<Input> {
        inputs.into_iter().filter(|input| !self.done.contains(&name(input))).collect()
    }

    /// Opens the file for appending: created (with its folders) if missing, a cut-off last line removed (with a
    /// warning on stderr), so that the next record starts a line of its own.
    pub fn into_journal(self) -> Result<Journal> {
        let path = self.path;
        let file = match self.file {
            Some(file) => file,
            None => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| Error::output(&path, OutputError::CreateFolder(e)))?;
                }
                let file = OpenOptions::new()
                    .read(true)
                    .append(true)
                    .create(true)
                    .open(&path)
                    .map_err(|e| Error::output(&path, OutputError::Io(e)))?;
                lock(&file, &path)?;
                file
            }
        };
        if self.cut > 0 {
            file.set_len(self.complete).map_err(|e| Error::output(&path, OutputError::Io(e)))?;
            eprintln!(
                "warning: --resume {}: its last line was cut off ({} bytes, a run stopped while writing it); \
                 removed, and its image is classified again",
                path.display(),
                self.cut
            );
        }
        Ok(Journal { path, file })
    }
}

/// The resume file, open for appending and locked.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Appends `record` (one line of JSON, without its newline) and its newline in one write.
    pub fn append(&mut self, record: &str) -> Result<()> {
        debug_assert!(!record.contains('\n'));
        let line = format!("{record}\n");
        self.file.write_all(line.as_bytes()).map_err(|e| Error::output(&self.path, OutputError::Io(e)))
    }
}

/// The name an input's record carries: its path as the run names it.
pub fn name(input: &Input) -> String {
    input.path.display().to_string()
}

/// Takes the file for this run alone: a second run on it is refused rather than interleaved.
fn lock(file: &File, path: &Path) -> Result<()> {
    // SAFETY: flock on a file descriptor that `file` owns and keeps open.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock {
        return Err(usage(path, "another run is appending to it; give each run (each shard) its own file"));
    }
    Err(usage(path, e))
}

/// A line's `image`, if it is a record of `model`.
fn parse(line: &[u8], model: &str) -> std::result::Result<String, String> {
    let value: serde_json::Value = serde_json::from_slice(line).map_err(|e| format!("not JSON ({e})"))?;
    let field = |key: &str| value.get(key).and_then(|v| v.as_str());
    let (Some(image), Some(recorded)) = (field("image"), field("model")) else {
        return Err("not a record of classify-image (it needs \"image\" and \"model\"); fix or delete the line".into());
    };
    if value.get("predictions").and_then(|p| p.as_array()).is_none() && field("error").is_none() {
        return Err(format!("the record of {image} has neither \"predictions\" nor \"error\"; fix or delete the line"));
    }
    if !same_model(recorded, model) {
        return Err(format!(
            "{image} was classified with {recorded}, and this run uses {model}; use -m {recorded}, or another file"
        ));
    }
    Ok(image.to_string())
}

/// Two names of one model: equal, or names of one zoo model with the same weights (`resnet`,
/// `resnet50.IMAGENET1K_V1`).
fn same_model(a: &str, b: &str) -> bool {
    a == b || ModelId::from_name(a).is_some_and(|id| ModelId::from_name(b) == Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(path: &str) -> Input {
        Input { path: path.into(), relative: path.into(), unreadable: None }
    }

    fn record(image: &str) -> String {
        format!(
            r#"{{"image":"{image}","model":"m","predictions":[{{"rank":0,"index":1,"label":"x","probability":0.5}}]}}"#
        )
    }

    fn names(inputs: &[Input]) -> Vec<String> {
        inputs.iter().map(name).collect()
    }

    #[test]
    fn a_cut_off_last_line_is_removed_and_its_image_done_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        let whole = format!("{}\n{}\n", record("a.png"), record("b.png"));
        let cut = &record("c.png")[..40];
        std::fs::write(&path, format!("{whole}{cut}")).unwrap();
        let ledger = Ledger::read(&path, "m").unwrap();
        assert_eq!(ledger.records(), 2);
        let all = vec![input("a.png"), input("b.png"), input("c.png"), input("d.png")];
        assert_eq!(names(&ledger.pending(all)), ["c.png", "d.png"]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{whole}{cut}"), "nothing written on reading");
        let mut journal = ledger.into_journal().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), whole, "the cut-off line is gone");
        journal.append(&record("c.png")).unwrap();
        drop(journal);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{whole}{}\n", record("c.png")));
        let again = Ledger::read(&path, "m").unwrap();
        assert_eq!(names(&again.pending(vec![input("a.png"), input("c.png"), input("d.png")])), ["d.png"]);
    }

    #[test]
    fn a_missing_file_records_nothing_and_is_created_with_its_folder_on_the_first_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/shard-0.jsonl");
        let ledger = Ledger::read(&path, "m").unwrap();
        assert_eq!(ledger.records(), 0);
        assert!(!path.exists(), "nothing written before the run starts");
        let mut journal = ledger.into_journal().unwrap();
        journal.append(&record("a.png")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), record("a.png") + "\n");
    }

    #[test]
    fn bad_lines_are_refused_with_their_number_and_failures_count_as_done() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        let failed = r#"{"image":"f.png","model":"m","error":"cannot read image f.png: the file is empty"}"#;
        for (line, needle) in [
            ("{not json", "line 4: not JSON"),
            (r#"{"image":"x.png"}"#, "line 4: not a record"),
            (r#"{"image":"x.png","model":"m"}"#, "line 4: the record of x.png has neither"),
            (
                r#"{"image":"x.png","model":"other","error":"e"}"#,
                "line 4: x.png was classified with other, and this run uses m",
            ),
            ("[1, 2]", "line 4: not a record"),
        ] {
            std::fs::write(&path, format!("{}\n{failed}\n\n{line}\n{}\n", record("a.png"), record("b.png"))).unwrap();
            let err = Ledger::read(&path, "m").unwrap_err();
            let message = err.to_string();
            assert!(message.starts_with(&format!("--resume {}: ", path.display())), "{message}");
            assert!(message.contains(needle) && !message.contains('\n'), "{line}: {message}");
            assert_eq!(err.exit_code(), classify_image::error::exit::USAGE);
        }
        // A blank line is skipped; the failed image is done.
        std::fs::write(&path, format!("{}\n\n{failed}\n", record("a.png"))).unwrap();
        let ledger = Ledger::read(&path, "m").unwrap();
        assert_eq!(names(&ledger.pending(vec![input("a.png"), input("f.png"), input("g.png")])), ["g.png"]);
    }

    #[test]
    fn a_second_run_on_the_same_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        let journal = Ledger::read(&path, "m").unwrap().into_journal().unwrap();
        let err = Ledger::read(&path, "m").unwrap_err().to_string();
        assert!(err.contains("another run is appending to it"), "{err}");
        drop(journal);
        assert!(Ledger::read(&path, "m").is_ok(), "free once the first run ends");
    }

    #[test]
    fn aliases_name_one_model() {
        assert!(same_model("resnet", "resnet50.IMAGENET1K_V1") && same_model("resnet50", "ResNet50_Weights.DEFAULT"));
        assert!(same_model("mine.pt", "mine.pt"));
        assert!(!same_model("resnet18", "resnet50") && !same_model("a.pt", "b.pt"));
        assert!(!same_model("resnet", "resnet50"), "the original's ResNet-50 weights are not torchvision's default");
    }
}
