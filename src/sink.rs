//! Where the annotated image goes: a file, written atomically, or a window, shown only where a display is
//! reachable (without one, Qt's highgui aborts the whole process, which no error handling can catch).
use crate::error::{Error, NoDisplay, OutputError, Result};
use crate::media;
use opencv::{core::Mat, core::Vector, imgcodecs};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The window title, as in the seed.
pub const WINDOW_TITLE: &str = "Classification";

/// Checks an output path before any work is done: a known image (or video) extension, not a folder, not
/// inside a file, and not an input. Missing folders are fine: [`write_image`] and [`VideoFile`] create them.
pub fn check_output(output: &Path, inputs: &[&Path], image: bool) -> Result<()> {
    let fail = |source: OutputError| Error::output(output, source);
    let ext = output.extension().and_then(|e| e.to_str()).unwrap_or("");
    if image && (ext.is_empty() || !imgcodecs::have_image_writer(format!("x.{ext}")).unwrap_or(false)) {
        return Err(fail(OutputError::NoImageEncoder { ext: ext.to_string() }));
    }
    if !image && video_fourcc(ext).is_none() {
        return Err(fail(OutputError::NoVideoFormat { ext: ext.to_string() }));
    }
    check_file_output(output, inputs)
}

/// Checks the path of any file to write, before any work is done: not a folder, not inside a file, and not
/// an input. A missing folder is fine: [`write_file`] creates it.
pub fn check_file_output(output: &Path, inputs: &[&Path]) -> Result<()> {
    let fail = |source: OutputError| Error::output(output, source);
    if output.is_dir() {
        return Err(fail(OutputError::IsDirectory));
    }
    if let Some(file) = output.ancestors().skip(1).find(|a| a.is_file()) {
        return Err(fail(OutputError::UnderFile { file: file.to_path_buf() }));
    }
    if inputs.iter().any(|input| same_file(input, output)) {
        return Err(fail(OutputError::IsInput));
    }
    Ok(())
}

/// Creates the folder that `path` goes in, if missing.
fn create_parent(path: &Path) -> Result<()> {
    std::fs::create_dir_all(parent_dir(path)).map_err(|e| Error::output(path, OutputError::CreateFolder(e)))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Are `a` and `b` the same file, whatever the paths (links, `..`)? False when either does not exist or
/// cannot be opened. Only files and folders are compared: opening a FIFO would wait for a writer.
pub fn same_file(a: &Path, b: &Path) -> bool {
    let plain = |p: &Path| p.metadata().is_ok_and(|m| m.is_file() || m.is_dir());
    plain(a) && plain(b) && same_file::is_same_file(a, b).unwrap_or(false)
}

/// Encodes `image` in the format the extension names and writes it atomically: a temporary file in the same
/// folder, renamed over the final name, so the path holds either the old file or the whole new one.
pub fn write_image(path: &Path, image: &Mat) -> Result<()> {
    let fail = |source: OutputError| Error::output(path, source);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let mut encoded = Vector::<u8>::new();
    if !imgcodecs::imencode_def(&format!(".{ext}"), image, &mut encoded)? {
        return Err(fail(OutputError::Encode { ext: ext.to_string() }));
    }
    write_file(path, encoded.as_slice())
}

/// Writes `bytes` atomically: a temporary file in the same folder (created if missing), renamed over the final
/// name, so the path holds either the old file or the whole new one.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let fail = |source: OutputError| Error::output(path, source);
    create_parent(path)?;
    let (mut tmp, _tracked) =
        crate::cleanup::create_tracked(|| temp_beside(path, ""), |tmp| tmp.path()).map_err(fail)?;
    tmp.write_all(bytes).and_then(|()| tmp.as_file().sync_all()).map_err(|e| fail(OutputError::Io(e)))?;
    tmp.persist(path).map_err(|e| fail(OutputError::Io(e.error)))?;
    Ok(())
}

/// A temporary file in `path`'s folder (so the final rename is atomic), ending in `suffix`.
fn temp_beside(path: &Path, suffix: &str) -> std::result::Result<tempfile::NamedTempFile, OutputError> {
    let dir = parent_dir(path);
    tempfile::Builder::new()
        .prefix(".classify-image-")
        .suffix(suffix)
        // Like any file the user creates (the mode is masked by the umask), not tempfile's private 0600.
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(&dir)
        .map_err(|source| OutputError::TempFile { dir, source })
}

/// The codec for a video file extension: MPEG-4 Part 2 in .mp4, Motion JPEG in .avi.
fn video_fourcc(ext: &str) -> Option<i32> {
    let code = match ext.to_ascii_lowercase().as_str() {
        "mp4" | "m4v" | "mov" => *b"mp4v",
        "avi" => *b"MJPG",
        _ => return None,
    };
    Some(media::fourcc(code))
}

/// An annotated video being written: frames go to a temporary file that takes the final name only when
/// the video is complete.
pub struct VideoFile {
    writer: media::VideoWriter,
    tmp: tempfile::TempPath,
    _tracked: crate::cleanup::Tracked,
    path: PathBuf,
}

impl VideoFile {
    pub fn create(path: &Path, fps: f64, size: opencv::core::Size) -> Result<VideoFile> {
        let fail = |source: OutputError| Error::output(path, source);
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let fourcc = video_fourcc(ext).ok_or_else(|| fail(OutputError::NoVideoFormat { ext: ext.to_string() }))?;
        create_parent(path)?;
        let (tmp, _tracked) = crate::cleanup::create_tracked(
            || temp_beside(path, &format!(".{ext}")).map(tempfile::NamedTempFile::into_temp_path),
            |tmp| tmp,
        )
        .map_err(fail)?;
        let tmp_str = tmp.to_str().ok_or_else(|| fail(OutputError::PathNotUtf8))?;
        let writer = media::VideoWriter::open(tmp_str, fourcc, fps, size)?;
        if !writer.is_opened()? {
            return Err(fail(OutputError::VideoWriter { ext: ext.to_string() }));
        }
        Ok(VideoFile { writer, tmp, _tracked, path: path.to_path_buf() })
    }

    pub fn write(&mut self, frame: &Mat) -> Result<()> {
        Ok(self.writer.write(frame)?)
    }

    /// Closes the video and gives it its final name.
    pub fn finish(mut self) -> Result<()> {
        self.writer.release()?;
        self.tmp.persist(&self.path).map_err(|e| Error::output(&self.path, OutputError::Io(e.error)))
    }
}

/// Fails unless a window can be opened: an X display that accepts connections, or a Qt platform chosen
/// explicitly (`QT_QPA_PLATFORM`, e.g. `offscreen`). Reads the environment: call it only where a window is
/// wanted.
pub fn check_display() -> Result<()> {
    if std::env::var_os("QT_QPA_PLATFORM").is_some_and(|v| !v.is_empty()) {
        return Ok(());
    }
    match std::env::var("DISPLAY") {
        Ok(display) if !display.is_empty() => {
            if x_display_reachable(&display) {
                Ok(())
            } else {
                Err(Error::NoDisplay(NoDisplay::Unreachable(display)))
            }
        }
        _ => Err(Error::NoDisplay(NoDisplay::Unset)),
    }
}

/// Connects to the X server named by a DISPLAY value (`[host]:N[.S]`) without speaking X: enough to know
/// that Qt will not abort on it.
fn x_display_reachable(display: &str) -> bool {
    let Some((host, rest)) = display.rsplit_once(':') else { return false };
    let Ok(number) = rest.split('.').next().unwrap_or("").parse::<u16>() else { return false };
    if host.is_empty() || host == "unix" {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixStream};
        let path = format!("/tmp/.X11-unix/X{number}");
        return UnixStream::connect(&path).is_ok()
            || SocketAddr::from_abstract_name(path.as_bytes()).is_ok_and(|a| UnixStream::connect_addr(&a).is_ok());
    }
    use std::net::{TcpStream, ToSocketAddrs};
    let Some(port) = number.checked_add(6000) else { return false };
    let Ok(mut addrs) = (host, port).to_socket_addrs() else { return false };
    addrs.any(|a| TcpStream::connect_timeout(&a, std::time::Duration::from_secs(2)).is_ok())
}

/// What the user did in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Any other key, or nothing within the wait.
    Next,
    /// `q` or Esc, or the window was closed: stop.
    Quit,
}

/// Shows `image` in a window titled "Classification" (call [`check_display`] first). With `wait_ms` 0 it
/// waits until a key is pressed or the window is closed, as the seed's `waitKey(0)`; otherwise at most that
/// long (video).
pub fn show(image: &Mat, wait_ms: i32) -> Result<Key> {
    media::show(WINDOW_TITLE, image)?;
    let started = std::time::Instant::now();
    loop {
        let key = media::wait_key(if wait_ms == 0 { 50 } else { wait_ms.min(50) })?;
        if key == 'q' as i32 || key == 27 {
            return Ok(Key::Quit);
        }
        if key >= 0 {
            return Ok(Key::Next);
        }
        if media::window_visible(WINDOW_TITLE)? < 1.0 {
            return Ok(Key::Quit);
        }
        if wait_ms > 0 && started.elapsed().as_millis() >= wait_ms as u128 {
            return Ok(Key::Next);
        }
    }
}

pub fn close_windows() -> Result<()> {
    Ok(media::destroy_windows()?)
}
