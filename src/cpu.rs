//! What the CPU offers the precisions: its model, the vector extensions that matter to libtorch's kernels
//! (from /proc/cpuinfo), and libtorch's own choice of kernels.
use std::ffi::c_char;

extern "C" {
    fn ci_cpu_capability() -> *const c_char;
}

/// The extensions that decide how fast each precision runs, as /proc/cpuinfo names them.
pub const FEATURES: &[&str] = &["avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8"];

#[derive(Debug, Clone, Default)]
pub struct Cpu {
    /// "model name" from /proc/cpuinfo.
    pub model: String,
    /// Those of [`FEATURES`] the CPU has.
    pub features: Vec<&'static str>,
}

impl Cpu {
    /// This machine's CPU; empty where /proc/cpuinfo cannot be read.
    pub fn detect() -> Cpu {
        std::fs::read_to_string("/proc/cpuinfo").map(|text| Cpu::parse(&text)).unwrap_or_default()
    }

    /// Reads the first processor's model name and flags.
    pub fn parse(cpuinfo: &str) -> Cpu {
        let field = |name: &str| {
            cpuinfo.lines().find_map(|l| {
                let (key, value) = l.split_once(':')?;
                (key.trim() == name).then(|| value.trim().to_string())
            })
        };
        let flags = field("flags").unwrap_or_default();
        let flags: Vec<&str> = flags.split_whitespace().collect();
        Cpu {
            model: field("model name").unwrap_or_default(),
            features: FEATURES.iter().copied().filter(|f| flags.contains(f)).collect(),
        }
    }

    pub fn has(&self, feature: &str) -> bool {
        self.features.contains(&feature)
    }

    /// bfloat16 arithmetic in hardware: AVX512_BF16 or AMX. Without it, oneDNN converts to float32 and back.
    pub fn native_bf16(&self) -> bool {
        self.has("avx512_bf16") || self.has("amx_bf16")
    }

    /// 8-bit dot products in one instruction (VNNI or AMX), which int8 convolutions are built on.
    pub fn native_int8(&self) -> bool {
        self.has("avx512_vnni") || self.has("avx_vnni") || self.has("amx_int8")
    }
}

/// The vector kernels libtorch dispatches to on this CPU: "AVX512", "AVX2", "DEFAULT" (or ARM's).
pub fn libtorch_kernels() -> String {
    // SAFETY: a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(ci_cpu_capability()) }.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_model_and_the_features_that_matter() {
        let zen4 =
            "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu avx2 avx512f \
                    avx512_vnni avx512_bf16 sha_ni\n\nprocessor\t: 1\nmodel name\t: other\n";
        let cpu = Cpu::parse(zen4);
        assert_eq!(cpu.model, "AMD EPYC 9R14");
        assert_eq!(cpu.features, ["avx2", "avx512f", "avx512_vnni", "avx512_bf16"]);
        assert!(cpu.native_bf16() && cpu.native_int8());
        let cascade_lake = Cpu::parse("model name : Intel Xeon\nflags : avx2 avx512f avx512_vnni\n");
        assert!(!cascade_lake.native_bf16() && cascade_lake.native_int8());
        assert!(Cpu::parse("").features.is_empty());
        assert!(!libtorch_kernels().is_empty());
    }
}
