//! Downloads on first use, against a local HTTP server on 127.0.0.1 that serves generated weights: success
//! and reuse of the cache, 404, truncated body, wrong hash, a stalled server, two concurrent downloads, offline
//! mode. Every failure must exit 3 with a clear message and leave no file under the official name.
use crate::common;

use assert_cmd::Command;
use common::{fixture, image};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
enum Behaviour {
    /// Serve the bytes, in 1 MiB chunks with `pause` between them.
    Serve {
        body: Arc<Vec<u8>>,
        pause: Duration,
    },
    NotFound,
    /// Declare the full length, send half, close.
    Truncate(Arc<Vec<u8>>),
    /// Send the headers and a little of the body, then nothing for 20 s.
    Stall(Arc<Vec<u8>>),
}

/// A one-file HTTP/1.1 server on 127.0.0.1 that counts its requests; stops when dropped.
struct Server {
    port: u16,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().take(16) {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                count.fetch_add(1, Ordering::SeqCst);
                let behaviour = behaviour.clone();
                std::thread::spawn(move || {
                    let _ = respond(stream, &behaviour);
                });
            }
        });
        Server { port, requests, stop }
    }

    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/models/", self.port)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn respond(mut stream: TcpStream, behaviour: &Behaviour) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear(); // skip the request line and headers
    }
    let header = |len: usize| format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n");
    match behaviour {
        Behaviour::NotFound => {
            stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found")?
        }
        Behaviour::Serve { body, pause } => {
            stream.write_all(header(body.len()).as_bytes())?;
            for chunk in body.chunks(1 << 20) {
                stream.write_all(chunk)?;
                std::thread::sleep(*pause);
            }
        }
        Behaviour::Truncate(body) => {
            stream.write_all(header(body.len()).as_bytes())?;
            stream.write_all(&body[..body.len() / 2])?;
        }
        Behaviour::Stall(body) => {
            stream.write_all(header(body.len()).as_bytes())?;
            stream.write_all(&body[..1000])?;
            stream.flush()?;
            std::thread::sleep(Duration::from_secs(20));
        }
    }
    stream.flush()
}

const OFFICIAL: &str = "resnet50-0676ba61.pth";

/// A TORCH_HOME and a checksum list that trusts the generated weights under the official name.
struct Env {
    home: tempfile::TempDir,
    weights: PathBuf,
    sums: PathBuf,
}

impl Env {
    fn new() -> Env {
        let home = tempfile::tempdir().unwrap();
        let weights = fixture("resnet").zip;
        // The trusted digest comes from coreutils, not from the code under test.
        let digest = common::sha256sum(&weights);
        let sums = home.path().join("SHA256SUMS");
        std::fs::write(&sums, format!("{digest}  {OFFICIAL}\n")).unwrap();
        Env { home, weights, sums }
    }

    fn body(&self) -> Arc<Vec<u8>> {
        Arc::new(std::fs::read(&self.weights).unwrap())
    }

    fn cache(&self) -> PathBuf {
        self.home.path().join("torch/hub/checkpoints")
    }

    /// classify-image with this TORCH_HOME, the server as base URL, the trusted list and a 2 s timeout.
    fn base(&self, server: &Server) -> std::process::Command {
        use assert_cmd::cargo::CommandCargoExt;
        let mut cmd = std::process::Command::cargo_bin("classify-image").unwrap();
        cmd.env("TORCH_HOME", self.home.path().join("torch"))
            .env("CLASSIFY_IMAGE_BASE_URL", server.base_url())
            .env("CLASSIFY_IMAGE_SHA256SUMS", &self.sums)
            .env("CLASSIFY_IMAGE_TIMEOUT", "2")
            .env_remove("CLASSIFY_IMAGE_OFFLINE");
        cmd
    }

    fn classify_std(&self, server: &Server) -> std::process::Command {
        let mut cmd = self.base(server);
        cmd.args(["-m", "resnet", "-i"]).arg(image("coffee.png")).arg("-o").arg(self.home.path().join("out.png"));
        cmd
    }

    fn classify(&self, server: &Server) -> Command {
        Command::from_std(self.classify_std(server))
    }

    /// The cache holds nothing at all: no official file, no partial file.
    fn assert_cache_empty(&self) {
        let leftovers: Vec<_> =
            std::fs::read_dir(self.cache()).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        assert!(leftovers.is_empty(), "left in the cache: {leftovers:?}");
    }
}

fn fails_with(cmd: &mut Command, needles: &[&str]) {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let last = stderr.trim_end().lines().last().unwrap_or("");
    assert!(last.starts_with("error: "), "{stderr}");
    for n in needles {
        assert!(last.contains(n), "{last:?} lacks {n:?}");
    }
}

#[test]
fn downloads_verifies_caches_and_classifies_then_uses_no_network() {
    let env = Env::new();
    let server = Server::start(Behaviour::Serve { body: env.body(), pause: Duration::ZERO });
    let out = env.classify(&server).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("Downloading: \"{}{OFFICIAL}\"", server.base_url())), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("[INFO] classifying image with 'resnet'..."));
    assert_eq!(server.requests(), 1);
    let cached = env.cache().join(OFFICIAL);
    assert_eq!(std::fs::read(&cached).unwrap(), *env.body(), "the cached file is the served one");
    assert_eq!(std::fs::read_dir(env.cache()).unwrap().count(), 1, "nothing else in the cache");

    // Second run: from the cache, no request; offline too.
    env.classify(&server).assert().success();
    env.classify(&server).arg("--offline").assert().success();
    assert_eq!(server.requests(), 1, "the cache is used without the network");
}

#[test]
fn an_existing_cache_file_needs_no_network() {
    let env = Env::new();
    std::fs::create_dir_all(env.cache()).unwrap();
    std::fs::copy(&env.weights, env.cache().join(OFFICIAL)).unwrap();
    let server = Server::start(Behaviour::NotFound);
    env.classify(&server).assert().success();
    assert_eq!(server.requests(), 0);
}

#[test]
fn not_found() {
    let env = Env::new();
    let server = Server::start(Behaviour::NotFound);
    fails_with(&mut env.classify(&server), &["cannot download", OFFICIAL, "HTTP 404"]);
    env.assert_cache_empty();
}

#[test]
fn truncated_body() {
    let env = Env::new();
    let server = Server::start(Behaviour::Truncate(env.body()));
    fails_with(&mut env.classify(&server), &["cannot download", OFFICIAL]);
    env.assert_cache_empty();
}

#[test]
fn wrong_hash_against_the_trusted_list_and_against_the_official_prefix() {
    let env = Env::new();
    let mut other = (*env.body()).clone();
    let last = other.len() - 1;
    other[last] ^= 1;
    let server = Server::start(Behaviour::Serve { body: Arc::new(other), pause: Duration::ZERO });
    fails_with(&mut env.classify(&server), &["SHA-256", "nothing was kept"]);
    env.assert_cache_empty();

    // Without the trusted list, the official file name's prefix applies, and generated weights fail it.
    let server = Server::start(Behaviour::Serve { body: env.body(), pause: Duration::ZERO });
    fails_with(env.classify(&server).env_remove("CLASSIFY_IMAGE_SHA256SUMS"), &["SHA-256", "0676ba61…"]);
    env.assert_cache_empty();
}

#[test]
fn a_stalled_server_times_out() {
    let env = Env::new();
    let server = Server::start(Behaviour::Stall(env.body()));
    let started = std::time::Instant::now();
    fails_with(&mut env.classify(&server), &["cannot download", "after 1000 bytes"]);
    assert!(started.elapsed() < Duration::from_secs(15), "gave up after {:?}", started.elapsed());
    env.assert_cache_empty();
}

#[test]
fn two_concurrent_downloads_both_end_well() {
    let env = Env::new();
    // ~100 chunks with 20 ms pauses: the two transfers overlap for about two seconds.
    let server = Server::start(Behaviour::Serve { body: env.body(), pause: Duration::from_millis(20) });
    let spawn = || {
        let mut cmd = env.classify_std(&server);
        cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap()
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(server.requests(), 2);
    assert_eq!(std::fs::read(env.cache().join(OFFICIAL)).unwrap(), *env.body());
    assert_eq!(std::fs::read_dir(env.cache()).unwrap().count(), 1, "no partial file left");
}

#[test]
fn offline_mode_never_touches_the_network() {
    let env = Env::new();
    let server = Server::start(Behaviour::Serve { body: env.body(), pause: Duration::ZERO });
    fails_with(env.classify(&server).arg("--offline"), &["no weights for resnet", "offline"]);
    fails_with(env.classify(&server).env("CLASSIFY_IMAGE_OFFLINE", "1"), &["offline"]);
    assert_eq!(server.requests(), 0);
    env.assert_cache_empty();
}

#[test]
fn weights_commands_download_list_and_verify() {
    let env = Env::new();
    let server = Server::start(Behaviour::Serve { body: env.body(), pause: Duration::ZERO });
    let weights = |args: &[&str]| {
        let mut cmd = env.base(&server);
        cmd.arg("weights").args(args);
        Command::from_std(cmd)
    };
    weights(&["download", "resnet"]).assert().success();
    assert_eq!(server.requests(), 1);
    let list = weights(&["list"]).output().unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    let row = list.lines().find(|l| l.starts_with("resnet50.IMAGENET1K_V1 (resnet) ")).unwrap();
    assert!(row.contains("cached: ") && row.contains(OFFICIAL), "{row}");
    assert!(list.lines().find(|l| l.starts_with("resnet18 ")).unwrap().contains("missing"));

    let verify = weights(&["verify"]).output().unwrap();
    assert!(verify.status.success());
    assert!(String::from_utf8_lossy(&verify.stdout).contains("resnet50.IMAGENET1K_V1: OK"));

    // A corrupted cache file is reported, with exit code 3.
    let cached = env.cache().join(OFFICIAL);
    let mut bytes = std::fs::read(&cached).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&cached, bytes).unwrap();
    let verify = weights(&["verify", "resnet"]).output().unwrap();
    assert_eq!(verify.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("resnet50.IMAGENET1K_V1: MISMATCH"));
}

/// Sends SIGINT to a running child.
fn interrupt(child: &std::process::Child) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
}

#[test]
fn ctrl_c_mid_download_leaves_no_file_under_the_official_name() {
    let env = Env::new();
    // ~100 chunks with 150 ms pauses: about 15 s of transfer, interrupted after the first bytes land.
    let server = Server::start(Behaviour::Serve { body: env.body(), pause: Duration::from_millis(150) });
    let mut child = env
        .classify_std(&server)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let partial = (0..200).find_map(|_| {
        std::thread::sleep(Duration::from_millis(50));
        std::fs::read_dir(env.cache())
            .ok()?
            .flatten()
            .find(|e| e.metadata().is_ok_and(|m| m.len() > 0))
            .map(|e| e.path())
    });
    let partial = partial.expect("the download starts writing its temporary file");
    assert!(!partial.ends_with(OFFICIAL), "bytes go to a temporary file first: {}", partial.display());
    interrupt(&child);
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    env.assert_cache_empty();
}
