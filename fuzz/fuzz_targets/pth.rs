//! The .pth reader on arbitrary bytes: it must return Ok or Err, never panic, hang or allocate without bound.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tensors) = safe_pth::parse(data) {
        // What parse returns is checked: every view lies inside its storage.
        for t in tensors {
            assert!(t.offset >= 0 && t.size.len() == t.stride.len());
        }
    }
});
