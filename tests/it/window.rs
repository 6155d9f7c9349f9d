//! The window: under Xvfb, a window titled "Classification" shows the annotated image and the program ends
//! after a key press. Without a display, a clear error instead of Qt's abort.
use crate::common;

use assert_cmd::cargo::CommandCargoExt;
use common::{image, real_lite0_weights};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An Xvfb server on a free display number, stopped on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        let number = (100..400)
            .find(|n| {
                !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
            })
            .expect("a free X display number");
        let child = Command::new("Xvfb")
            .args([format!(":{number}").as_str(), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb is installed (scripts/setup.sh)");
        let socket = format!("/tmp/.X11-unix/X{number}");
        wait_for(Duration::from_secs(20), || Path::new(&socket).exists().then_some(())).expect("Xvfb started");
        Xvfb { child, display: format!(":{number}") }
    }

    fn tool(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("DISPLAY", &self.display);
        cmd
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(v) = probe() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

fn classify(args: &[&std::ffi::OsStr]) -> Command {
    let mut cmd = Command::cargo_bin("classify-image").unwrap();
    cmd.args(args).env_remove("QT_QPA_PLATFORM").env_remove("WAYLAND_DISPLAY");
    cmd
}

#[test]
fn window_shows_the_annotated_image_and_closes_on_a_key() {
    let x = Xvfb::start();
    let dir = tempfile::tempdir().unwrap();
    let (img, weights) = (image("coffee.png"), real_lite0_weights());
    let expected = dir.path().join("expected.png");
    let base = [
        "-i".as_ref(),
        img.as_os_str(),
        "-m".as_ref(),
        "efficientnet_lite0".as_ref(),
        "--weights".as_ref(),
        weights.as_os_str(),
    ];
    let mut with_output = base.to_vec();
    with_output.extend(["-o".as_ref(), expected.as_os_str()]);
    assert!(classify(&with_output).env_remove("DISPLAY").status().unwrap().success());

    let mut child = classify(&base).env("DISPLAY", &x.display).stdout(Stdio::piped()).spawn().unwrap();
    let windows = || -> Vec<String> {
        let out = x.tool("xdotool").args(["search", "--name", "^Classification$"]).output().unwrap();
        String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
    };
    let window = wait_for(Duration::from_secs(60), || windows().into_iter().next())
        .expect("a window titled Classification appears");
    // Let Qt paint, then grab the window's content.
    std::thread::sleep(Duration::from_millis(800));
    let shot = dir.path().join("shot.png");
    assert!(x.tool("import").args(["-window", &window]).arg(&shot).status().unwrap().success());
    let diff = pixel_difference(&shot, &expected);
    assert_eq!(diff, Some(0.0), "the window does not show the annotated image");
    assert!(child.try_wait().unwrap().is_none(), "the program must wait for a key");

    // A key for each window of that title, looked up again at each press until the program ends: a press sent
    // to a window id that is no longer there fails with BadWindow (seen once in a run of the whole suite).
    let status = wait_for(Duration::from_secs(20), || {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        for window in windows() {
            let _ = x.tool("xdotool").args(["key", "--window", &window, "q"]).status();
        }
        None
    })
    .expect("the program ends after a key");
    assert!(status.success(), "exit status {status}");
}

fn pixel_difference(a: &Path, b: &Path) -> Option<f64> {
    use opencv::{core, imgcodecs, prelude::*};
    let read = |p: &Path| imgcodecs::imread(p.to_str().unwrap(), imgcodecs::IMREAD_COLOR).unwrap();
    let (a, b) = (read(a), read(b));
    (a.size().unwrap() == b.size().unwrap()).then(|| core::norm2(&a, &b, core::NORM_INF, &core::no_array()).unwrap())
}

/// Without a usable display and without --output: the predictions are printed, then exit 2 (not Qt's abort,
/// 134) with one line naming --output, and nothing written.
fn assert_no_window_error(display: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let img = image("coffee.png");
    let mut cmd = classify(&["-i".as_ref(), img.as_os_str(), "-m".as_ref(), "efficientnet_lite0".as_ref()]);
    cmd.current_dir(dir.path());
    match display {
        Some(d) => cmd.env("DISPLAY", d),
        None => cmd.env_remove("DISPLAY"),
    };
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("--output"), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 9, "the predictions come first: {stdout}");
    assert!(stdout.contains("0. espresso: "), "{stdout}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written");
}

#[test]
fn no_display_is_a_clear_error_not_an_abort() {
    assert_no_window_error(None);
}

#[test]
fn unreachable_display_is_a_clear_error_not_an_abort() {
    assert_no_window_error(Some(":987"));
}
