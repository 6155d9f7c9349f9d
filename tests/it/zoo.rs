//! The model zoo beyond the seed's five: each model's logits equal torchvision's (or efficientnet-lite-pytorch's)
//! on the same calibrated random weights and photos (max |Δ| ≤ 1e-4, same top-5); EfficientNet-Lite1/2 also
//! with their real weights, which must classify the sample photos correctly.
use crate::common;

use classify_image::ModelId;
use common::{assert_classifies_samples, assert_parity, reference_logits, zip_fixture};

fn parity(model: &str) {
    let fx = zip_fixture(model);
    assert_parity(model, &fx.zip, &fx.logits);
}

macro_rules! zoo_parity {
    ($($test:ident: $model:literal,)*) => {
        $(
            #[test]
            fn $test() {
                parity($model);
            }
        )*
    };
}

zoo_parity! {
    vgg11_matches_torchvision: "vgg11",
    vgg11_bn_matches_torchvision: "vgg11_bn",
    vgg13_matches_torchvision: "vgg13",
    vgg13_bn_matches_torchvision: "vgg13_bn",
    vgg16_bn_matches_torchvision: "vgg16_bn",
    vgg19_bn_matches_torchvision: "vgg19_bn",
    resnet18_matches_torchvision: "resnet18",
    resnet34_matches_torchvision: "resnet34",
    resnet101_matches_torchvision: "resnet101",
    resnet152_matches_torchvision: "resnet152",
    densenet161_matches_torchvision: "densenet161",
    densenet169_matches_torchvision: "densenet169",
    densenet201_matches_torchvision: "densenet201",
    mobilenet_v2_matches_torchvision: "mobilenet_v2",
    mobilenet_v3_small_matches_torchvision: "mobilenet_v3_small",
    mobilenet_v3_large_matches_torchvision: "mobilenet_v3_large",
    efficientnet_lite1_matches_the_reference: "efficientnet_lite1",
    efficientnet_lite2_matches_the_reference: "efficientnet_lite2",
}

fn real_weights(model: ModelId) {
    let weights = classify_image::weights::hub::find_local(model.spec()).expect("installed by scripts/setup.sh");
    let weights = weights.path();
    assert_parity(model.name(), weights, &reference_logits(model.name(), weights));
    assert_classifies_samples(model);
}

#[test]
fn efficientnet_lite1_real_weights_match_and_classify_the_samples() {
    real_weights(ModelId::EfficientnetLite1);
}

#[test]
fn efficientnet_lite2_real_weights_match_and_classify_the_samples() {
    real_weights(ModelId::EfficientnetLite2);
}

#[test]
fn seed_aliases_mean_what_they_mean_in_the_seed() {
    for (alias, name) in [("resnet", "resnet50"), ("densenet", "densenet121"), ("inception", "inception_v3")] {
        assert_eq!(ModelId::from_name(alias), ModelId::from_name(name));
        assert!(ModelId::from_name(alias).unwrap().spec().aliases.contains(&alias));
    }
    assert_eq!(ModelId::Resnet50.spec().weights.file, "resnet50-0676ba61.pth");
    assert_eq!(ModelId::Resnet50V2.spec().weights.file, "resnet50-11ad3fa6.pth");
    assert_eq!(ModelId::from_name("vgg16").unwrap().spec().weights.file, "vgg16-397923af.pth");
}
