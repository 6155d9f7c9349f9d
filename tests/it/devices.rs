//! Devices: without a GPU, --device cuda and --half fail clearly; the CUDA link that the `cuda` feature
//! applies to classify-image really registers libtorch's CUDA hooks (gpu-check always has it). Whether the
//! models then run on a GPU is not verified on this machine (no GPU); gpu-check is the script for one.
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

#[test]
fn cuda_without_a_gpu_and_half_on_the_cpu_fail_clearly() {
    let image = format!("{}/images/coffee.png", env!("CARGO_MANIFEST_DIR"));
    for (args, needle) in [
        (vec!["--device", "cuda"], "libtorch sees 0 CUDA device(s)"),
        (vec!["--device", "cuda:1"], "--device cuda:1"),
        (vec!["--device", "tpu"], "unknown device 'tpu'"),
        (vec!["--device", "cpu", "--half"], "--half needs a CUDA device"),
    ] {
        let out = Command::cargo_bin("classify-image")
            .unwrap()
            .args(["-i", &image, "-m", "efficientnet_lite0", "-o", "/tmp/never-written.png"])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.trim_end().lines().count() == 1 && stderr.contains(needle), "{args:?}: {stderr}");
    }
}
