//! Where the annotated image goes: a file, written atomically, or a window, shown only where a display is
//! reachable (without one, Qt's highgui aborts the whole process: SPEC §6).
use crate::error::{Error, Result};
use opencv::{core::Mat, core::Vector, highgui, imgcodecs};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The window title, as in the seed.
pub const WINDOW_TITLE: &str = "Classification";

/// Checks an output path before any work is done: a known image extension, an existing folder, and not the
/// input itself.
pub fn check_output(output: &Path, inputs: &[&Path]) -> Result<()> {
    let usage = |why: String| Error::Usage(format!("cannot write --output {}: {why}", output.display()));
    let ext = output.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext.is_empty() || !imgcodecs::have_image_writer(format!("x.{ext}")).unwrap_or(false) {
        return Err(usage(format!(
            "OpenCV has no image encoder for the extension '{ext}'; end the --output path with .png or .jpg"
        )));
    }
    let dir = parent_dir(output);
    if !dir.is_dir() {
        return Err(usage(format!("the folder {} does not exist; create it first", dir.display())));
    }
    if output.is_dir() {
        return Err(usage("it is a directory; give a file name".into()));
    }
    if inputs.iter().any(|input| same_file(input, output)) {
        return Err(usage("it is the input image, which is never overwritten; choose another --output".into()));
    }
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (a.metadata(), b.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Encodes `image` in the format the extension names and writes it atomically: a temporary file in the same
/// folder, renamed over the final name, so the path holds either the old file or the whole new one.
pub fn write_image(path: &Path, image: &Mat) -> Result<()> {
    let fail = |reason: String| Error::Output { path: path.to_path_buf(), reason };
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let mut encoded = Vector::<u8>::new();
    if !imgcodecs::imencode_def(&format!(".{ext}"), image, &mut encoded)? {
        return Err(fail(format!("OpenCV could not encode a .{ext} image")));
    }
    let dir = parent_dir(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".classify-image-")
        // Like any file the user creates (the mode is masked by the umask), not tempfile's private 0600.
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(&dir)
        .map_err(|e| fail(format!("{e} (creating a temporary file in {})", dir.display())))?;
    tmp.write_all(encoded.as_slice()).and_then(|()| tmp.as_file().sync_all()).map_err(|e| fail(e.to_string()))?;
    tmp.persist(path).map_err(|e| fail(e.error.to_string()))?;
    Ok(())
}

/// Fails, with a message naming `--output`, unless a window can be opened: an X display that accepts
/// connections, or a Qt platform chosen explicitly (`QT_QPA_PLATFORM`, e.g. `offscreen`).
pub fn check_display() -> Result<()> {
    if std::env::var_os("QT_QPA_PLATFORM").is_some_and(|v| !v.is_empty()) {
        return Ok(());
    }
    let no_window = |why: String| {
        Error::Display(format!(
            "{why}, so no window can be shown; pass --output FILE to write the annotated image instead"
        ))
    };
    match std::env::var("DISPLAY") {
        Ok(display) if !display.is_empty() => {
            if x_display_reachable(&display) {
                Ok(())
            } else {
                Err(no_window(format!("the X display {display} does not answer")))
            }
        }
        _ => Err(no_window("there is no display (DISPLAY is not set)".into())),
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

/// Shows `image` in a window titled "Classification" until a key is pressed or the window is closed.
/// Call [`check_display`] first.
pub fn show_window(image: &Mat) -> Result<()> {
    // GUI_NORMAL: the image alone, without Qt's toolbar and status bar.
    let flags = highgui::WINDOW_AUTOSIZE | highgui::WINDOW_KEEPRATIO | highgui::WINDOW_GUI_NORMAL;
    highgui::named_window(WINDOW_TITLE, flags)?;
    highgui::imshow(WINDOW_TITLE, image)?;
    loop {
        if highgui::wait_key(50)? >= 0 {
            break;
        }
        if highgui::get_window_property(WINDOW_TITLE, highgui::WND_PROP_VISIBLE)? < 1.0 {
            break;
        }
    }
    highgui::destroy_all_windows()?;
    Ok(())
}
