//! Replays the fuzzing corpora (fuzz/corpus) and every input fuzzing found a crash with (fuzz/regressions):
//! the .pth reader and the image path must return, never panic or abort. scripts/fuzz.sh grows the corpora.
mod common;

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

#[test]
fn pth_corpus_replays() {
    let (mut ok, mut refused) = (0, 0);
    for path in inputs("pth") {
        match safe_pth::parse(&std::fs::read(&path).unwrap()) {
            Ok(_) => ok += 1,
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
                ok += 1;
            }
            Err(_) => refused += 1,
        }
    }
    eprintln!("image corpus: {ok} decoded, {refused} refused");
    assert!(ok > 0, "the seeds include valid images");
}
