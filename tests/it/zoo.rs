//! The model zoo beyond the seed's five: the registry is torchvision's (every builder, every ImageNet-1k weights,
//! their files, accuracy and transforms); every architecture takes exactly the tensors of torchvision's
//! `state_dict()`; each family's logits equal torchvision's (or efficientnet-lite-pytorch's) on the same
//! calibrated random weights and photos (max |Δ| ≤ 1e-4, same top-5); EfficientNet-Lite1/2 also with their real
//! weights, which must classify the sample photos correctly.
use crate::common;

use classify_image::models::{PresetKind, MODELS};
use classify_image::ModelId;
use common::{assert_classifies_samples, assert_parity, python_cached, reference_logits, zip_fixture};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

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
    alexnet_matches_torchvision: "alexnet",
    convnext_tiny_matches_torchvision: "convnext_tiny",
    efficientnet_b0_matches_torchvision: "efficientnet_b0",
    efficientnet_v2_s_matches_torchvision: "efficientnet_v2_s",
    googlenet_matches_torchvision: "googlenet",
    maxvit_t_matches_torchvision: "maxvit_t",
    mnasnet0_5_matches_torchvision: "mnasnet0_5",
    regnet_x_400mf_matches_torchvision: "regnet_x_400mf",
    regnet_y_400mf_matches_torchvision: "regnet_y_400mf",
    resnext50_32x4d_matches_torchvision: "resnext50_32x4d",
    wide_resnet50_2_matches_torchvision: "wide_resnet50_2",
    shufflenet_v2_x0_5_matches_torchvision: "shufflenet_v2_x0_5",
    squeezenet1_0_matches_torchvision: "squeezenet1_0",
    squeezenet1_1_matches_torchvision: "squeezenet1_1",
    swin_t_matches_torchvision: "swin_t",
    swin_v2_t_matches_torchvision: "swin_v2_t",
    vit_b_32_matches_torchvision: "vit_b_32",
}

fn real_weights(model: ModelId) {
    let weights = classify_image::weights::hub::find_local(model).expect("installed by scripts/setup.sh");
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
    for (alias, name) in
        [("resnet", "resnet50.IMAGENET1K_V1"), ("densenet", "densenet121"), ("inception", "inception_v3")]
    {
        assert_eq!(ModelId::from_name(alias), ModelId::from_name(name));
        assert!(ModelId::from_name(alias).unwrap().weights().aliases.contains(&alias));
    }
    let file = |name: &str| ModelId::from_name(name).unwrap().weights().file.file;
    assert_eq!(file("resnet"), "resnet50-0676ba61.pth");
    assert_eq!(file("resnet50"), "resnet50-11ad3fa6.pth", "torchvision's default, IMAGENET1K_V2");
    assert_eq!(file("resnet50_v2"), "resnet50-11ad3fa6.pth", "the name earlier versions gave it");
    assert_eq!(file("vgg16"), "vgg16-397923af.pth");
}

/// What `scripts/tv_meta.py ARGS... --out FILE` writes, run once per distinct request and cached.
fn tv_meta(args: &[&str]) -> Value {
    let dir = common::stable_dir("tv-meta");
    let out = dir.join(format!("{}.json", args[0]));
    let mut all = crate::os_args!["scripts/tv_meta.py", args[0], "--out", &out];
    all.extend(args[1..].iter().map(std::ffi::OsString::from));
    let script = common::root().join("scripts/tv_meta.py");
    let run = python_cached(&all, &[&script], &[&out]);
    assert!(run.status.success(), "tv_meta.py {}: {}", args[0], String::from_utf8_lossy(&run.stderr));
    serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap()
}

/// The registry is torchvision's zoo, as torchvision 0.28 describes it: every builder of
/// `list_models(module=torchvision.models)` under its own name, with each of its weights that classify
/// ImageNet-1k, its DEFAULT first, each with torchvision's file, accuracy, GMACs, file size, eval transform and
/// normalisation, and ImageNet's 1000 categories in torchvision's order; and nothing else from
/// download.pytorch.org.
#[test]
fn the_registry_is_torchvisions_zoo() {
    let tv = tv_meta(&["registry"]);
    let tv = tv.as_object().unwrap();
    assert_eq!(tv.len(), 80, "torchvision 0.28's classification builders");
    for (builder, entry) in tv {
        let arch = MODELS.iter().find(|m| m.name == builder).unwrap_or_else(|| panic!("no {builder} in the registry"));
        let theirs = entry["weights"].as_array().unwrap();
        let tags: Vec<&str> = arch.weights.iter().map(|w| w.tag).collect();
        let their_tags: Vec<&str> = theirs.iter().map(|w| w["tag"].as_str().unwrap()).collect();
        assert_eq!(tags, their_tags, "{builder}: its weights, torchvision's DEFAULT ({}) first", entry["default"]);
        for (w, t) in arch.weights.iter().zip(theirs) {
            let what = format!("{builder}.{}", w.tag);
            let f = |k: &str| t[k].as_f64().unwrap_or_else(|| panic!("{what}: {k} in {t}"));
            assert_eq!(w.file.url, t["url"].as_str(), "{what}: URL");
            assert_eq!(w.accuracy.top1, f("acc1"), "{what}: acc@1");
            assert_eq!(w.accuracy.top5, Some(f("acc5")), "{what}: acc@5");
            assert_eq!(w.file_mb, f("file_mb"), "{what}: file size");
            assert_eq!(w.gmacs, Some(f("gmacs")), "{what}: GMACs");
            let tv_preset = w.preset(PresetKind::Torchvision);
            assert_eq!(tv_preset.resize, Some(f("resize") as i64), "{what}: resize");
            assert_eq!(tv_preset.size, f("crop") as i64, "{what}: crop");
            assert_eq!(tv_preset.interpolation.name(), t["interpolation"], "{what}: interpolation");
            assert_eq!(t["antialias"], true, "{what}: antialias");
            let triple =
                |k: &str| -> Vec<f64> { t[k].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect() };
            assert_eq!(w.mean.to_vec(), triple("mean"), "{what}: mean");
            assert_eq!(w.std.to_vec(), triple("std"), "{what}: std");
            assert_eq!(
                (t["categories"].as_u64(), &t["imagenet_categories"]),
                (Some(1000), &Value::Bool(true)),
                "{what}"
            );
        }
    }
    let ours = ModelId::all().filter(|id| id.weights().file.url.is_some_and(|u| u.contains("download.pytorch.org")));
    for id in ours {
        assert!(tv.contains_key(id.spec().name), "{}: not a torchvision model", id.name());
    }
}

/// Every architecture builds from made-up tensors and runs (its smallest input in, 1000 logits out; a forward
/// pass of more than 20 GMACs there, ViT-L/16's and ViT-H/14's at their one size, is left to the parity tests of
/// their family), takes each tensor once, fits its files' sizes, and without tensors fails naming the first it
/// needs; and a torchvision architecture takes exactly the tensors of torchvision's `state_dict()` for the model as
/// built for its weights (on the meta device), by name and shape: with its default weights, and with those of
/// its other weights that make another model, with another input size and another `state_dict()` (a SWAG ViT's
/// larger position embedding), BatchNorm's `num_batches_tracked` aside, and the auxiliary classifiers that
/// torchvision drops after loading.
#[test]
fn every_architecture_takes_torchvisions_state_dict_and_runs() {
    use classify_image::models::layers::Params;
    use tch::{Device, Kind, Tensor};
    let torchvision = |id: &ModelId| id.weights().file.url.is_some_and(|u| u.contains("download.pytorch.org"));
    let ids: Vec<ModelId> = ModelId::all()
        .filter(|id| id.is_default() || id.weights().eval.crop != id.with_default_weights().weights().eval.crop)
        .collect();
    let tv_name = |id: &ModelId| format!("{}.{}", id.spec().name, id.weights().tag);
    let names: Vec<String> = ids.iter().filter(|id| torchvision(id)).map(tv_name).collect();
    let mut args = vec!["state-dicts"];
    args.extend(names.iter().map(String::as_str));
    let tv = tv_meta(&args);
    // Other weights whose model torchvision builds with the very state_dict of the default weights' (RegNet's
    // SWAG weights at 384 pixels) make no other model to check.
    let ids: Vec<ModelId> = ids
        .into_iter()
        .filter(|id| id.is_default() || !torchvision(id) || tv[tv_name(id)] != tv[tv_name(&id.with_default_weights())])
        .collect();
    let check = |id: &ModelId| {
        let _no_grad = tch::no_grad_guard();
        let (m, w) = (id.spec(), id.weights());
        let name = tv_name(id);
        let (net, asked) = id.dry_build().unwrap_or_else(|e| panic!("{name} does not build: {e}"));
        assert!(!asked.is_empty(), "{name} asks for no tensors");
        let mut ours = HashMap::new();
        for (key, shape) in &asked {
            assert!(ours.insert(key.clone(), shape.clone()).is_none(), "{name} asks for `{key}` twice");
        }
        assert_eq!(net.classes(), 1000, "{name}");

        // No file holds less than its float32 parameters (the unused keys, such as Inception's auxiliary
        // classifier, aside), whichever unit its size is given in, but the float16 ones, which hold half that:
        // the IMAGENET1K_V1 files of the wide ResNets (68.9 million parameters of wide_resnet50_2 in 131.82 MiB).
        let bytes = 4.0 * asked.iter().map(|(_, s)| s.iter().product::<i64>()).sum::<i64>() as f64;
        for w in m.weights.iter().filter(|o| o.eval.crop == w.eval.crop) {
            let fits = |ratio: f64| (0.4..1.1).contains(&ratio);
            let ratio = bytes / (w.file_mb * 1e6);
            assert!(fits(ratio) || fits(ratio / 2.0), "{name}: {bytes} bytes of parameters in a {} MB file", w.file_mb);
        }

        let side = net.input_sizes().smallest();
        if w.gmacs.unwrap_or(0.0) * (side as f64 / w.eval.crop as f64).powi(2) <= 20.0 {
            let logits = net.forward(&Tensor::zeros([1, 3, side, side], (Kind::Float, Device::Cpu)));
            assert_eq!(logits.size(), [1, 1000], "{name}");
        }

        let empty = Params::new(Default::default(), Device::Cpu, Kind::Float);
        match id.build(empty) {
            Ok(_) => panic!("{name} builds without tensors"),
            Err(e) => assert!(e.0.contains(&format!("has no `{}`", asked[0].0)), "{name}: {}", e.0),
        }

        if !torchvision(id) {
            return;
        }
        let theirs: BTreeMap<String, Vec<i64>> = tv[&name]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| (kv[0].as_str().unwrap().to_string(), serde_json::from_value(kv[1].clone()).unwrap()))
            .filter(|(k, _)| !k.ends_with("num_batches_tracked") && !m.unused.iter().any(|u| k.starts_with(u)))
            .collect();
        let missing: Vec<&String> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
        let extra: Vec<&String> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
        assert!(missing.is_empty() && extra.is_empty(), "{name}: not taken: {missing:?}; not torchvision's: {extra:?}");
        for (key, shape) in &theirs {
            assert_eq!(&ours[key], shape, "{name}: shape of {key}");
        }
    };
    // On two threads: this is the suite's longest test, and the last to start.
    std::thread::scope(|scope| {
        for half in 0..2 {
            let (ids, check) = (&ids, &check);
            scope.spawn(move || ids.iter().skip(half).step_by(2).for_each(check));
        }
    });
    assert_eq!(ids.iter().filter(|id| id.is_default()).count(), MODELS.len());
    assert!(names.len() >= 80, "{} torchvision architectures checked", names.len());
}

/// README.md's model table is `classify-image weights list --markdown`, the registry's own rendering, between
/// its markers: it cannot drift from the registry.
#[test]
fn the_readmes_model_table_is_the_registrys() {
    let out = assert_cmd::Command::cargo_bin("classify-image")
        .unwrap()
        .args(["weights", "list", "--markdown"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    assert_eq!(table.lines().count(), 2 + MODELS.len(), "a header, a rule and a row per architecture");
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    let (_, rest) = readme.split_once("<!-- models:begin -->\n").expect("README.md's models:begin marker");
    let (in_readme, _) = rest.split_once("<!-- models:end -->").expect("README.md's models:end marker");
    assert!(
        in_readme == table,
        "README.md's model table is not the registry's: replace it with `classify-image weights list --markdown`:\n{table}"
    );
}
