//! The image path on arbitrary bytes: decode (with the size guard) and both input preparations.
#![no_main]
use classify_image::{models, preprocess};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = preprocess::decode(data) {
        let seed = preprocess::to_tensor(&image, &models::SEED).expect("a decoded image prepares");
        assert_eq!(seed.size(), [1, 3, 224, 224]);
        let torchvision = models::Preset { resize: Some(256), ..models::SEED };
        // A tiny image can be too small to crop after the resize only if the resize is smaller than the crop.
        let _ = preprocess::to_tensor(&image, &torchvision);
    }
});
