//! Temporary files that an interruption must not leave behind. Outputs and downloads are written to a
//! temporary file and renamed, so a final name never holds a partial file; on Ctrl-C (SIGINT) or SIGTERM the
//! handler that the binary installs ([`install_signal_handler`]) also removes the temporary files, then exits
//! with 130.
use std::path::{Path, PathBuf};
use std::sync::Mutex;

static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A temporary file to remove on interruption, for as long as this guard lives.
#[derive(Debug)]
pub struct Tracked(PathBuf);

/// Creates a temporary file with `create` and tracks the path that `path` reads from it, in one step as far as
/// the interruption handler is concerned: it cannot run between the two and miss the file.
pub fn create_tracked<T, E>(
    create: impl FnOnce() -> Result<T, E>,
    path: impl Fn(&T) -> &Path,
) -> Result<(T, Tracked), E> {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    let file = create()?;
    let tracked = Tracked(path(&file).to_path_buf());
    live.push(tracked.0.clone());
    Ok((file, tracked))
}

impl Drop for Tracked {
    fn drop(&mut self) {
        LIVE.lock().unwrap_or_else(|e| e.into_inner()).retain(|p| p != &self.0);
    }
}

/// Exit code after an interruption, as shells report SIGINT.
pub const INTERRUPTED: i32 = 130;

/// On SIGINT or SIGTERM: remove the live temporary files, run `epilogue` (the caller's last words, such as
/// closing a JSON array on stdout), say so, exit with [`INTERRUPTED`].
pub fn install_signal_handler(epilogue: fn()) {
    let _ = ctrlc::set_handler(move || {
        // Held until the process ends: no temporary file is created after the list is read.
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        let paths: Vec<PathBuf> = live.drain(..).collect();
        for path in &paths {
            let _ = std::fs::remove_file(path);
        }
        epilogue();
        eprintln!("interrupted; {} unfinished file(s) removed", paths.len());
        // _exit, not exit: the main thread may be inside OpenCV, FFmpeg or libtorch, whose static destructors
        // (run by exit) would then crash.
        // SAFETY: _exit ends the process at once; nothing here needs running afterwards.
        unsafe { libc::_exit(INTERRUPTED) }
    });
}
