//! Replays the fuzzing corpora (fuzz/corpus) and every input that once made a target fail (fuzz/regressions: a
//! crash, an abort, or memory without bound): the .pth reader and the image path must return, never panic or
//! abort, and what the .pth reader accepts must hold. scripts/fuzz.sh grows the corpora.
use crate::common;

use classify_image::{models, preprocess};

fn inputs(target: &str) -> Vec<std::path::PathBuf> {
    let mut all = Vec::new();
    for dir in ["corpus", "regressions"] {
        if let Ok(entries) = std::fs::read_dir(common::root().join("fuzz").join(dir).join(target)) {
            all.extend(entries.flatten().map(|e| e.path()));
        }
    }
    assert!(!all.is_empty(), "fuzz/corpus/{target} is empty");
    all
}

/// What parse returns is checked: every view lies inside its storage (an empty one reads nothing).
fn assert_inside_storage(path: &std::path::Path, t: &safe_pth::TensorEntry) {
    let what = format!("{}: tensor {}", path.display(), t.name);
    assert_eq!(t.size.len(), t.stride.len(), "{what}");
    assert!(t.offset >= 0 && t.size.iter().chain(&t.stride).all(|&n| n >= 0), "{what}");
    assert_eq!(t.storage.len() % t.dtype.size(), 0, "{what}");
    if t.size.contains(&0) {
        return;
    }
    let numel = (t.storage.len() / t.dtype.size()) as i128;
    let reach = |(&n, &s): (&i64, &i64)| (n as i128 - 1) * s as i128;
    let last = t.size.iter().zip(&t.stride).map(reach).fold(t.offset as i128, i128::saturating_add);
    assert!(last < numel, "{what}: element {last} of a storage of {numel}");
}

#[test]
fn pth_corpus_replays() {
    let (mut ok, mut refused) = (0, 0);
    for path in inputs("pth") {
        match safe_pth::parse(&std::fs::read(&path).unwrap()) {
            Ok(tensors) => {
                tensors.iter().for_each(|t| assert_inside_storage(&path, t));
                ok += 1;
            }
            Err(_) => refused += 1,
        }
    }
    eprintln!("pth corpus: {ok} parsed, {refused} refused");
    assert!(ok > 0, "the seeds include valid state dicts");
}

#[test]
fn image_corpus_replays() {
    let (mut ok, mut refused) = (0, 0);
    for path in inputs("image") {
        match preprocess::decode(&std::fs::read(&path).unwrap()) {
            Ok(image) => {
                assert_eq!(preprocess::to_tensor(&image, &models::SEED).unwrap().size(), [1, 3, 224, 224]);
                // torchvision's preparation too, as the fuzz target runs it: a tiny or a long, thin image is
                // refused, never resized into gigabytes.
                let torchvision = models::Preset { resize: Some(256), ..models::SEED };
                if let Ok(t) = preprocess::to_tensor(&image, &torchvision) {
                    assert_eq!(t.size(), [1, 3, 224, 224]);
                }
                ok += 1;
            }
            Err(_) => refused += 1,
        }
    }
    eprintln!("image corpus: {ok} decoded, {refused} refused");
    assert!(ok > 0, "the seeds include valid images");
}
