//! Pickle bombs: a 1.4 MB `.pth` whose pickle pushes one 1 MiB string 200,000 times, by the memo (BINGET) or
//! by DUP, in both containers. A reader that copies the string per push asks for 200 GB. classify-image must
//! refuse each file like any other bad weights (exit 3, one line naming the file, nothing written), within 2 s
//! of being started and 300 MB of peak resident memory, in a 4 GB address space.
//!
//! Most of the 2 s is start-up (loading libtorch and OpenCV, about 0.6 s on an idle machine). On a busy one the
//! wall-clock bound grows by what start-up alone takes there beyond that, measured on a file refused at its
//! first byte; the CPU time the process used is held to 2 s in any case.
use crate::common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Instant;

const STRING_BYTES: usize = 1 << 20;
const PUSHES: usize = 200_000;
const MAX_SECONDS: f64 = 2.0;
const MAX_RSS_BYTES: i64 = 300_000_000;
/// `ulimit -v`, in KiB.
const ADDRESS_SPACE_KIB: u64 = 4_000_000;

/// PROTO 2, BINUNICODE of 1 MiB, BINPUT 0, `op` 200,000 times, STOP.
fn bomb_pickle(op: &[u8]) -> Vec<u8> {
    let mut p = b"\x80\x02X".to_vec();
    p.extend((STRING_BYTES as u32).to_le_bytes());
    p.extend(std::iter::repeat_n(b'a', STRING_BYTES));
    p.extend(b"q\x00");
    p.extend(op.repeat(PUSHES));
    p.push(b'.');
    p
}

/// torch.save's zip container: `archive/data.pkl`, stored, with the entries beside it.
fn zip_container(pickle: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in [("archive/data.pkl", pickle), ("archive/byteorder", b"little"), ("archive/version", b"3\n")] {
        w.start_file(name, stored).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn binunicode(p: &mut Vec<u8>, s: &str) {
    p.push(b'X');
    p.extend((s.len() as u32).to_le_bytes());
    p.extend(s.as_bytes());
}

/// The legacy container: the magic number (LONG1 0x1950a86a20f9469cfc6c), protocol 1001, the system info, the
/// pickle in the state dict's place, and an empty list of storage keys.
fn legacy_container(pickle: &[u8]) -> Vec<u8> {
    let mut f = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.".to_vec();
    f.extend(b"\x80\x02M\xe9\x03.");
    f.extend(b"\x80\x02}q\x00(");
    binunicode(&mut f, "protocol_version");
    f.extend(b"M\xe9\x03");
    binunicode(&mut f, "little_endian");
    f.push(0x88);
    f.extend(b"u.");
    f.extend(pickle);
    f.extend(b"\x80\x02]q\x00.");
    f
}

struct Refusal {
    code: Option<i32>,
    stderr: String,
    /// Wall-clock, from the spawn (the launcher's start-up included).
    seconds: f64,
    /// User and system time of the process and its threads.
    cpu_seconds: f64,
    peak_rss_bytes: i64,
}

/// Runs the CLI on `weights` in a 4 GB address space, timed from the spawn. It is started by a small Python
/// launcher, whose own children's resource usage is the CLI's alone: Linux counts the memory a forked child
/// shared with its parent before its exec into its peak, and this test process (all the integration tests in
/// one) can be large.
fn classify_with(weights: &Path, out: &Path, torch_home: &Path) -> Refusal {
    const LAUNCHER: &str = r#"
import json, resource, subprocess, sys
limit = int(sys.argv[1]) * 1024
def cap():
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
code = subprocess.run(sys.argv[2:], preexec_fn=cap, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL).returncode
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"code": code, "cpu": u.ru_utime + u.ru_stime, "maxrss_kib": u.ru_maxrss}))
"#;
    let binary = assert_cmd::cargo::cargo_bin("classify-image");
    let start = Instant::now();
    let output = common::python()
        .args(["-c", LAUNCHER, &ADDRESS_SPACE_KIB.to_string()])
        .arg(binary)
        .arg("-i")
        .arg(common::image("coffee.png"))
        .args(["-m", "resnet18", "--weights"])
        .arg(weights)
        .arg("-o")
        .arg(out)
        .env("CLASSIFY_IMAGE_OFFLINE", "1")
        .env("TORCH_HOME", torch_home)
        .env_remove("DISPLAY")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("launcher: {e}: {}", String::from_utf8_lossy(&output.stderr)));
    let code = report["code"].as_i64().filter(|c| *c >= 0).map(|c| c as i32);
    Refusal {
        code,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        seconds,
        cpu_seconds: report["cpu"].as_f64().unwrap(),
        peak_rss_bytes: report["maxrss_kib"].as_i64().unwrap() * 1024,
    }
}

/// One bomb at a time: the limits are on time and memory, which runs in parallel would share.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Start-up on an idle machine, which the 2 s include.
const IDLE_START_UP_SECONDS: f64 = 0.6;

fn assert_refused(name: &str, op: &[u8], container: fn(&[u8]) -> Vec<u8>) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join(format!("{name}.pth"));
    std::fs::write(&weights, container(&bomb_pickle(op))).unwrap();
    let size = std::fs::metadata(&weights).unwrap().len();
    assert!((1_000_000..1_600_000).contains(&size), "{name}: {size} bytes");
    let out = dir.path().join("out.png");
    let torch_home = dir.path().join("torch-home");

    // The same command on a file refused at its first byte: start-up and nothing else.
    let junk = dir.path().join("junk.pth");
    std::fs::write(&junk, b"junk").unwrap();
    let start_up = classify_with(&junk, &out, &torch_home);
    assert_eq!(start_up.code, Some(3), "junk weights: {}", start_up.stderr);
    let max_seconds = MAX_SECONDS + (start_up.seconds - IDLE_START_UP_SECONDS).max(0.0);

    let r = classify_with(&weights, &out, &torch_home);
    eprintln!(
        "{name} ({size} bytes): exit {:?} in {:.2} s ({:.2} s of CPU; start-up alone {:.2} s), peak RSS {:.0} MB: {}",
        r.code,
        r.seconds,
        r.cpu_seconds,
        start_up.seconds,
        r.peak_rss_bytes as f64 / 1e6,
        r.stderr.trim_end()
    );
    assert_eq!(r.code, Some(3), "{name}: {}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{name}: one line, got: {}", r.stderr);
    assert!(lines[0].contains(weights.to_str().unwrap()), "{name}: {:?} does not name the file", lines[0]);
    assert!(!out.exists(), "{name}: nothing may be written");
    assert!(r.seconds < max_seconds, "{name}: refused after {:.2} s (limit {max_seconds:.2} s)", r.seconds);
    assert!(r.cpu_seconds < MAX_SECONDS, "{name}: {:.2} s of CPU", r.cpu_seconds);
    assert!(r.peak_rss_bytes < MAX_RSS_BYTES, "{name}: peak RSS {} bytes", r.peak_rss_bytes);
}

#[test]
fn memo_bomb_in_a_zip_is_refused() {
    assert_refused("memo-bomb-zip", b"h\x00", zip_container);
}

#[test]
fn memo_bomb_in_a_legacy_file_is_refused() {
    assert_refused("memo-bomb-legacy", b"h\x00", legacy_container);
}

#[test]
fn dup_bomb_in_a_zip_is_refused() {
    assert_refused("dup-bomb-zip", b"2", zip_container);
}

#[test]
fn dup_bomb_in_a_legacy_file_is_refused() {
    assert_refused("dup-bomb-legacy", b"2", legacy_container);
}
