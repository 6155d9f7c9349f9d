//! Devices: a CUDA device that libtorch does not see, and --half on the CPU, fail clearly; the CUDA link that
//! the `cuda` feature applies to classify-image really registers libtorch's CUDA hooks (gpu-check always has
//! it). The expectations follow the GPUs that classify-image itself reports, so the tests hold on a machine
//! with a GPU too; gpu-check is the script that compares the models' logits there.
use assert_cmd::Command;

fn stdout(bin: &str, args: &[&str]) -> String {
    let out = Command::cargo_bin(bin).unwrap().args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn gpu_check_links_cuda_and_libtorch_registers_its_hooks() {
    let out = stdout("gpu-check", &[]);
    assert!(out.contains("cuda hooks registered: yes"), "{out}");
}

#[test]
fn classify_image_has_cuda_hooks_exactly_when_built_with_the_cuda_feature() {
    let out = stdout("classify-image", &["devices"]);
    let expected = if cfg!(feature = "cuda") { "yes" } else { "no" };
    assert!(out.contains(&format!("cuda hooks registered: {expected}")), "{out}");
}

/// The number of CUDA devices classify-image sees, as `classify-image devices` reports it.
fn cuda_devices() -> usize {
    let out = stdout("classify-image", &["devices"]);
    let line = out.lines().find_map(|l| l.strip_prefix("cuda devices: ")).expect("a cuda devices line");
    line.trim().parse().unwrap()
}

#[test]
fn devices_it_does_not_see_and_half_on_the_cpu_fail_clearly() {
    let image = format!("{}/images/coffee.png", env!("CARGO_MANIFEST_DIR"));
    let n = cuda_devices();
    let beyond = format!("cuda:{n}");
    let seen = format!("libtorch sees {n} CUDA device(s)");
    let mut cases = vec![
        (vec!["--device", beyond.as_str()], seen.as_str()),
        (vec!["--device", "tpu"], "invalid value 'tpu' for '--device <DEVICE>': use auto, cpu, cuda or cuda:N"),
        (vec!["--device", "cpu", "--half"], "--precision fp16 (--half) needs a CUDA device"),
    ];
    if n == 0 {
        cases.push((vec!["--device", "cuda"], seen.as_str()));
    }
    for (args, needle) in cases {
        let out = Command::cargo_bin("classify-image")
            .unwrap()
            .args(["-i", &image, "-m", "efficientnet_lite0", "-o", "/tmp/never-written.png"])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        // Our own errors are one line; clap's usage errors add its pointer to --help.
        let first = stderr.lines().next().unwrap_or("");
        assert!(first.starts_with("error: ") && first.contains(needle), "{args:?}: {stderr}");
    }
}

/// `devices` says whether bf16 and int8 are native from the CPU's own flags: a CPU without AVX512_BF16 or AMX
/// is told so, not promised speed.
#[test]
fn devices_reports_the_cpus_native_precisions_from_its_flags() {
    let out = stdout("classify-image", &["devices"]);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let flags: Vec<&str> = cpuinfo
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.trim() == "flags").map(|(_, v)| v))
        .unwrap()
        .split_whitespace()
        .collect();
    let line = out.lines().find(|l| l.starts_with("cpu precisions: ")).expect("a cpu precisions line");
    let bf16 = flags.contains(&"avx512_bf16") || flags.contains(&"amx_bf16");
    assert_eq!(line.contains("bf16 native"), bf16, "{line} with flags {flags:?}");
    assert_eq!(line.contains("bf16 converted in software"), !bf16, "{line}");
    let vnni = ["avx512_vnni", "avx_vnni", "amx_int8"].iter().any(|f| flags.contains(f));
    assert_eq!(line.contains("int8 native"), vnni, "{line}");
    let features = out.lines().find_map(|l| l.strip_prefix("cpu features: ")).expect("a cpu features line");
    for f in classify_image::cpu::FEATURES {
        assert_eq!(features.split_whitespace().any(|x| x == *f), flags.contains(f), "{f} in {features}");
    }
    assert!(out.lines().any(|l| l.starts_with("libtorch cpu kernels: ")), "{out}");
}

/// `devices` says how the CPU convolutions run: oneDNN called directly with the libtorch the build linked, and
/// libtorch's operator when that is switched off.
#[test]
fn devices_reports_how_the_convolutions_run() {
    let line = |out: String| out.lines().find_map(|l| l.strip_prefix("cpu convolutions: ").map(str::to_owned));
    let direct = line(stdout("classify-image", &["devices"])).expect("a cpu convolutions line");
    assert!(direct.starts_with("oneDNN primitives made once"), "{direct}");
    let out = assert_cmd::Command::cargo_bin("classify-image")
        .unwrap()
        .env("CLASSIFY_IMAGE_DIRECT_ONEDNN", "0")
        .arg("devices")
        .output()
        .unwrap();
    let operator = line(String::from_utf8_lossy(&out.stdout).into_owned()).expect("a cpu convolutions line");
    assert_eq!(operator, "libtorch's fused oneDNN operator (CLASSIFY_IMAGE_DIRECT_ONEDNN=0)");
}
