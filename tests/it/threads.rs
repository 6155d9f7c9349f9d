//! The library from several threads at once: reading images and classifying them in 4 threads gives what one
//! thread gives, and the process's stderr is the same file afterwards (no library call redirects it).
use crate::common;

use classify_image::{preprocess, Classifier, ModelId};
use std::path::PathBuf;

fn top5_of_all(classifier: &Classifier, images: &[PathBuf]) -> Vec<Vec<(usize, f32)>> {
    images
        .iter()
        .map(|path| {
            let image = preprocess::read_image(path).unwrap();
            let scores = classifier.classify(&image).unwrap();
            scores.top(5).iter().map(|p| (p.index, p.probability)).collect()
        })
        .collect()
}

/// The device and inode of file descriptor 2.
fn stderr_identity() -> (u64, u64) {
    // SAFETY: fstat on fd 2 into a zeroed struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::fstat(2, &mut st) }, 0);
    (st.st_dev, st.st_ino)
}

#[test]
fn four_threads_classify_as_one_does_and_leave_stderr_alone() {
    fn is_send<T: Send>() {}
    is_send::<Classifier>(); // a Classifier may move to another thread (it is not shared: forward is &self on tch modules, which are Send, not Sync)

    let weights = common::real_lite0_weights();
    let mut images = common::images();
    // A damaged JPEG too: its decoder warns, which must not touch the process's stderr.
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.jpg");
    std::fs::write(&cut, &std::fs::read(common::image("squirrel_cls.jpg")).unwrap()[..5000]).unwrap();
    images.push(cut.clone());

    let before = stderr_identity();
    let single =
        top5_of_all(&Classifier::new(ModelId::EfficientnetLite0, &weights, tch::Device::Cpu).unwrap(), &images);
    let (_, warnings) = preprocess::read_image_with_warnings(&cut).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");

    // One classifier per thread, each built in its thread, and one built here and moved into a thread.
    let moved = Classifier::new(ModelId::EfficientnetLite0, &weights, tch::Device::Cpu).unwrap();
    let results: Vec<_> = std::thread::scope(|scope| {
        let mut handles: Vec<_> = (0..3)
            .map(|_| {
                let (weights, images) = (&weights, &images);
                scope.spawn(move || {
                    let classifier = Classifier::new(ModelId::EfficientnetLite0, weights, tch::Device::Cpu).unwrap();
                    (0..3).map(|_| top5_of_all(&classifier, images)).collect::<Vec<_>>()
                })
            })
            .collect();
        let images = &images;
        handles.push(scope.spawn(move || (0..3).map(|_| top5_of_all(&moved, images)).collect::<Vec<_>>()));
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for runs in &results {
        for run in runs {
            for (a, b) in run.iter().zip(&single) {
                assert_eq!(a.iter().map(|p| p.0).collect::<Vec<_>>(), b.iter().map(|p| p.0).collect::<Vec<_>>());
                for (pa, pb) in a.iter().zip(b) {
                    assert!((pa.1 - pb.1).abs() <= 1e-6, "{pa:?} vs {pb:?}");
                }
            }
        }
    }
    assert_eq!(results.len(), 4);
    assert_eq!(stderr_identity(), before, "stderr is the same file after decoding in threads");
}
