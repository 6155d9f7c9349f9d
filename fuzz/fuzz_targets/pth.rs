//! The .pth reader on arbitrary bytes: it must return Ok or Err, never panic, hang or allocate without bound
//! (scripts/fuzz.sh runs it with libFuzzer's -malloc_limit_mb and -rss_limit_mb).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tensors) = safe_pth::parse(data) {
        // What parse returns is checked: every view lies inside its storage.
        for t in tensors {
            assert_eq!(t.size.len(), t.stride.len(), "{}", t.name);
            assert!(t.offset >= 0 && t.size.iter().chain(&t.stride).all(|&n| n >= 0), "{}", t.name);
            assert_eq!(t.storage.len() % t.dtype.size(), 0, "{}", t.name);
            if t.size.contains(&0) {
                continue; // an empty view reads nothing
            }
            let numel = (t.storage.len() / t.dtype.size()) as i128;
            let reach = |(&n, &s): (&i64, &i64)| (n as i128 - 1) * s as i128;
            let last = t.size.iter().zip(&t.stride).map(reach).fold(t.offset as i128, i128::saturating_add);
            assert!(last < numel, "{}: element {last} of a storage of {numel}", t.name);
        }
    }
});
