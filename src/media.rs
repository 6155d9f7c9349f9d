//! OpenCV's video files, cameras and windows, through a small library of their own (csrc/media.cpp, compiled by
//! build.rs) that is built into the binary and loaded the first time a run opens one. Linked directly, OpenCV's
//! videoio and highgui modules load about 110 libraries (Qt, FFmpeg, GStreamer...) at every start: a tenth of a
//! second of each run, most of which read and write still images only.
use opencv::core::{Mat, Size};
use opencv::prelude::*;
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::OnceLock;

/// The library's bytes, loaded from memory (a memfd), so that the binary stays one file.
static LIBRARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libclassify_image_media.so"));

/// NULL, or an error message the library malloc'ed.
type Status = *mut c_char;

/// The library's functions (csrc/media.cpp says what each does).
struct Api {
    capture_open_file: unsafe extern "C" fn(*const c_char, *mut *mut c_void) -> Status,
    capture_open_camera: unsafe extern "C" fn(i32, *mut *mut c_void) -> Status,
    capture_is_opened: unsafe extern "C" fn(*mut c_void, *mut bool) -> Status,
    capture_read: unsafe extern "C" fn(*mut c_void, *mut c_void, *mut bool) -> Status,
    capture_fps: unsafe extern "C" fn(*mut c_void, *mut f64) -> Status,
    capture_free: unsafe extern "C" fn(*mut c_void),
    writer_open: unsafe extern "C" fn(*const c_char, i32, f64, i32, i32, *mut *mut c_void) -> Status,
    writer_is_opened: unsafe extern "C" fn(*mut c_void, *mut bool) -> Status,
    writer_write: unsafe extern "C" fn(*mut c_void, *const c_void) -> Status,
    writer_release: unsafe extern "C" fn(*mut c_void) -> Status,
    writer_free: unsafe extern "C" fn(*mut c_void),
    window_show: unsafe extern "C" fn(*const c_char, *const c_void) -> Status,
    window_wait_key: unsafe extern "C" fn(i32, *mut i32) -> Status,
    window_visible: unsafe extern "C" fn(*const c_char, *mut f64) -> Status,
    windows_destroy: unsafe extern "C" fn() -> Status,
}

static API: OnceLock<Result<Api, String>> = OnceLock::new();

fn api() -> opencv::Result<&'static Api> {
    API.get_or_init(load).as_ref().map_err(|e| {
        opencv::Error::new(opencv::core::StsError, format!("cannot load OpenCV's video and window support: {e}"))
    })
}

fn dlerror() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated message valid until the next dl* call on this thread.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown error".to_string()
    } else {
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

/// Opens the embedded library: from an anonymous in-memory file, or, where /proc is not mounted, from a temporary
/// file removed once loaded.
fn open() -> Result<*mut c_void, String> {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    let dlopen = |path: &std::path::Path| {
        let path = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
        // SAFETY: a NUL-terminated path; the library's constructors are OpenCV's.
        let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            Err(dlerror())
        } else {
            Ok(handle)
        }
    };
    // SAFETY: memfd_create with a NUL-terminated name; the descriptor it returns is owned by `file`.
    let fd = unsafe { libc::memfd_create(c"classify-image-media".as_ptr(), libc::MFD_CLOEXEC) };
    if fd >= 0 {
        let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
        if file.write_all(LIBRARY).is_ok() {
            if let Ok(handle) = dlopen(std::path::Path::new(&format!("/proc/self/fd/{fd}"))) {
                return Ok(handle);
            }
        }
    }
    let mut tmp =
        tempfile::Builder::new().prefix("classify-image-media").suffix(".so").tempfile().map_err(|e| e.to_string())?;
    tmp.write_all(LIBRARY).map_err(|e| e.to_string())?;
    dlopen(tmp.path())
}

fn load() -> Result<Api, String> {
    let handle = open()?;
    fn sym<T: Copy>(handle: *mut c_void, name: &CStr) -> Result<T, String> {
        // SAFETY: a NUL-terminated name looked up in a library that stays loaded for the life of the process.
        let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
        if p.is_null() {
            return Err(format!("{} is missing", name.to_string_lossy()));
        }
        // SAFETY: T is the function pointer type that csrc/media.cpp declares for this name.
        Ok(unsafe { std::mem::transmute_copy::<*mut c_void, T>(&p) })
    }
    Ok(Api {
        capture_open_file: sym(handle, c"ci_capture_open_file")?,
        capture_open_camera: sym(handle, c"ci_capture_open_camera")?,
        capture_is_opened: sym(handle, c"ci_capture_is_opened")?,
        capture_read: sym(handle, c"ci_capture_read")?,
        capture_fps: sym(handle, c"ci_capture_fps")?,
        capture_free: sym(handle, c"ci_capture_free")?,
        writer_open: sym(handle, c"ci_writer_open")?,
        writer_is_opened: sym(handle, c"ci_writer_is_opened")?,
        writer_write: sym(handle, c"ci_writer_write")?,
        writer_release: sym(handle, c"ci_writer_release")?,
        writer_free: sym(handle, c"ci_writer_free")?,
        window_show: sym(handle, c"ci_window_show")?,
        window_wait_key: sym(handle, c"ci_window_wait_key")?,
        window_visible: sym(handle, c"ci_window_visible")?,
        windows_destroy: sym(handle, c"ci_windows_destroy")?,
    })
}

/// OpenCV's exception, as the opencv crate reports one.
fn check(status: Status) -> opencv::Result<()> {
    if status.is_null() {
        return Ok(());
    }
    // SAFETY: a NUL-terminated message that the library malloc'ed for us to free.
    let message = unsafe { CStr::from_ptr(status) }.to_string_lossy().into_owned();
    unsafe { libc::free(status.cast()) };
    Err(opencv::Error::new(opencv::core::StsError, message))
}

fn c_string(s: &str) -> opencv::Result<CString> {
    CString::new(s).map_err(|_| opencv::Error::new(opencv::core::StsBadArg, format!("{s:?} contains a NUL byte")))
}

/// A video file or a camera being read (OpenCV's `VideoCapture`).
pub struct VideoCapture(*mut c_void);

impl VideoCapture {
    pub fn open_file(path: &str) -> opencv::Result<VideoCapture> {
        let (api, path) = (api()?, c_string(path)?);
        let mut capture = std::ptr::null_mut();
        check(unsafe { (api.capture_open_file)(path.as_ptr(), &mut capture) })?;
        Ok(VideoCapture(capture))
    }

    pub fn open_camera(index: i32) -> opencv::Result<VideoCapture> {
        let api = api()?;
        let mut capture = std::ptr::null_mut();
        check(unsafe { (api.capture_open_camera)(index, &mut capture) })?;
        Ok(VideoCapture(capture))
    }

    pub fn is_opened(&self) -> opencv::Result<bool> {
        let mut opened = false;
        check(unsafe { (api()?.capture_is_opened)(self.0, &mut opened) })?;
        Ok(opened)
    }

    /// The next frame into `frame`; false at the end.
    pub fn read(&mut self, frame: &mut Mat) -> opencv::Result<bool> {
        let mut read = false;
        check(unsafe { (api()?.capture_read)(self.0, frame.as_raw_mut_Mat(), &mut read) })?;
        Ok(read)
    }

    /// The frame rate the source reports (0 or NaN where it reports none).
    pub fn fps(&self) -> opencv::Result<f64> {
        let mut fps = 0.0;
        check(unsafe { (api()?.capture_fps)(self.0, &mut fps) })?;
        Ok(fps)
    }
}

impl Drop for VideoCapture {
    fn drop(&mut self) {
        if let (false, Ok(api)) = (self.0.is_null(), api()) {
            unsafe { (api.capture_free)(self.0) }
        }
    }
}

/// A video file being written (OpenCV's `VideoWriter`), in colour.
pub struct VideoWriter(*mut c_void);

// SAFETY: an OpenCV VideoWriter may be used from any thread, one at a time, which &mut self ensures.
unsafe impl Send for VideoWriter {}

/// OpenCV's four-character code of a codec.
pub fn fourcc(code: [u8; 4]) -> i32 {
    i32::from_le_bytes(code)
}

impl VideoWriter {
    pub fn open(path: &str, fourcc: i32, fps: f64, size: Size) -> opencv::Result<VideoWriter> {
        let (api, path) = (api()?, c_string(path)?);
        let mut writer = std::ptr::null_mut();
        check(unsafe { (api.writer_open)(path.as_ptr(), fourcc, fps, size.width, size.height, &mut writer) })?;
        Ok(VideoWriter(writer))
    }

    pub fn is_opened(&self) -> opencv::Result<bool> {
        let mut opened = false;
        check(unsafe { (api()?.writer_is_opened)(self.0, &mut opened) })?;
        Ok(opened)
    }

    pub fn write(&mut self, frame: &Mat) -> opencv::Result<()> {
        check(unsafe { (api()?.writer_write)(self.0, frame.as_raw_Mat()) })
    }

    /// Finishes the file.
    pub fn release(&mut self) -> opencv::Result<()> {
        check(unsafe { (api()?.writer_release)(self.0) })
    }
}

impl Drop for VideoWriter {
    fn drop(&mut self) {
        if let (false, Ok(api)) = (self.0.is_null(), api()) {
            unsafe { (api.writer_free)(self.0) }
        }
    }
}

/// Shows `image` in the window titled `title`, at its own size, without Qt's toolbar and status bar.
pub fn show(title: &str, image: &Mat) -> opencv::Result<()> {
    let (api, title) = (api()?, c_string(title)?);
    check(unsafe { (api.window_show)(title.as_ptr(), image.as_raw_Mat()) })
}

/// The key pressed within `delay_ms` (OpenCV's `waitKey`), or -1.
pub fn wait_key(delay_ms: i32) -> opencv::Result<i32> {
    let mut key = -1;
    check(unsafe { (api()?.window_wait_key)(delay_ms, &mut key) })?;
    Ok(key)
}

/// Whether the window titled `title` is still visible (OpenCV's `WND_PROP_VISIBLE`: below 1 once closed).
pub fn window_visible(title: &str) -> opencv::Result<f64> {
    let (api, title) = (api()?, c_string(title)?);
    let mut visible = 0.0;
    check(unsafe { (api.window_visible)(title.as_ptr(), &mut visible) })?;
    Ok(visible)
}

/// Closes every window; loads nothing where no window was opened.
pub fn destroy_windows() -> opencv::Result<()> {
    match API.get() {
        Some(Ok(api)) => check(unsafe { (api.windows_destroy)() }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fourcc_is_opencvs() {
        for code in [*b"MJPG", *b"mp4v"] {
            let [a, b, c, d] = code.map(char::from);
            assert_eq!(super::fourcc(code), opencv::videoio::VideoWriter::fourcc(a, b, c, d).unwrap());
        }
    }
}
