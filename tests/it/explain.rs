//! Grad-CAM against pytorch-grad-cam (PyPI grad-cam, scripts/cam_reference.py) on the same weights, images and
//! target layer (with its family's reshape of token outputs): the seed's five models, MobileNet V2 and V3, and one
//! member of every other torchvision family on their calibrated fixtures, and EfficientNet-Lite0 on its real
//! weights: every family of the zoo.
//! The map at the input resolution is within 1e-3 of `GradCAM`'s, and the overlay is `show_cam_on_image`'s.
use crate::common;

use assert_cmd::Command;
use classify_image::{cam, preprocess, Classifier, ModelId};
use opencv::{core, imgcodecs, prelude::*};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const MAP_TOLERANCE: f32 = 1e-3;
const IMAGES: [&str; 2] = ["chelsea.png", "coffee.png"];
/// The class of the job that names one: Lite0's "tiger cat", not its top-1 on either photo.
const NAMED: usize = 282;

/// (model, weights, class: None for the top-1) of every reference job.
fn jobs() -> Vec<(&'static str, PathBuf, Option<usize>)> {
    let mut jobs: Vec<_> =
        ["vgg16", "vgg19", "inception", "densenet", "resnet"].map(|m| (m, common::fixture(m).zip, None)).to_vec();
    // The rest of the zoo: MobileNet in both versions, and one member of every other family (Swin in both
    // versions: V2's blocks normalise after attention), on their calibrated fixtures.
    for model in [
        "mobilenet_v2",
        "mobilenet_v3_small",
        "alexnet",
        "convnext_tiny",
        "efficientnet_b0",
        "googlenet",
        "maxvit_t",
        "mnasnet0_5",
        "regnet_y_400mf",
        "shufflenet_v2_x0_5",
        "squeezenet1_1",
        "swin_t",
        "swin_v2_t",
        "vit_b_32",
    ] {
        jobs.push((model, common::zip_fixture(model).zip, None));
    }
    jobs.push(("efficientnet_lite0", common::real_lite0_weights(), None));
    jobs.push(("efficientnet_lite0", common::real_lite0_weights(), Some(NAMED)));
    jobs
}

fn job_dir(model: &str, class: Option<usize>) -> String {
    format!("{model}-{}", class.map_or("top".to_string(), |c| c.to_string()))
}

/// pytorch-grad-cam's maps and overlays for every job, made once (one Python process) and cached.
fn reference() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = common::stable_dir("cam-reference");
        let script = common::root().join("scripts/cam_reference.py");
        let mut args = crate::os_args!["scripts/cam_reference.py", "cam", "--out-dir", &dir];
        let mut inputs: Vec<PathBuf> = vec![script];
        for (model, weights, class) in jobs() {
            let spec = ModelId::from_name(model).unwrap().spec();
            let class = class.map_or("top".to_string(), |c| c.to_string());
            args.extend(crate::os_args!["--job", model, &weights, spec.cam_layer, spec.cam_reshape.name(), class]);
            inputs.push(weights);
        }
        let images: Vec<PathBuf> = IMAGES.iter().map(|i| common::image(i)).collect();
        args.extend(images.iter().map(|p| p.clone().into_os_string()));
        inputs.extend(images);
        let input_refs: Vec<&Path> = inputs.iter().map(|p| p.as_path()).collect();
        let out = common::python_cached(&args, &input_refs, &[&dir]);
        assert!(out.status.success(), "cam_reference.py failed: {}", String::from_utf8_lossy(&out.stderr));
        dir
    })
}

fn read_f32(path: &Path) -> Vec<f32> {
    std::fs::read(path).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

fn map_values(map: &core::Mat) -> Vec<f32> {
    map.data_typed::<f32>().unwrap().to_vec()
}

fn imread(path: &Path) -> core::Mat {
    let image = imgcodecs::imread(path.to_str().unwrap(), imgcodecs::IMREAD_COLOR).unwrap();
    assert!(!image.empty(), "{} is not an image", path.display());
    image
}

/// Per-pixel |a − b| over two images of the same size, as a histogram: count of each difference.
fn differences(a: &core::Mat, b: &core::Mat) -> HashMap<u8, usize> {
    assert_eq!((a.rows(), a.cols(), a.typ()), (b.rows(), b.cols(), b.typ()));
    let mut hist = HashMap::new();
    for (x, y) in a.data_bytes().unwrap().iter().zip(b.data_bytes().unwrap()) {
        *hist.entry(x.abs_diff(*y)).or_insert(0) += 1;
    }
    hist
}

/// show_cam_on_image colours `uint8(255 · mask)` with JET, a step function: where 255 · mask lies within
/// `delta` of a whole number, two masks that agree to a few ulps can fall on either side of it, and the colour
/// moves by one step of the colour map (at most 4 grey levels in a channel). Everywhere else the pixels are
/// within 1 grey level. `mask` is ours (cam::mask).
fn assert_overlays_agree(what: &str, ours: &core::Mat, theirs: &core::Mat, mask: &core::Mat, delta: f32) {
    assert_eq!((ours.rows(), ours.cols(), ours.typ()), (theirs.rows(), theirs.cols(), theirs.typ()), "{what}");
    let mask = mask.data_typed::<f32>().unwrap();
    let (a, b) = (ours.data_bytes().unwrap(), theirs.data_bytes().unwrap());
    let mut flips = 0;
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let d = x.abs_diff(*y);
        if d <= 1 {
            continue;
        }
        let level = 255.0 * mask[i / 3];
        let pixel = (i / 3 % ours.cols() as usize, i / 3 / ours.cols() as usize);
        assert!(
            d <= 4 && (level - level.round()).abs() <= delta,
            "{what}: pixel {pixel:?} differs by {d} grey levels where 255 · mask is {level}"
        );
        flips += 1;
    }
    eprintln!("{what}: {flips} of {} channel values differ by more than 1, all at a level boundary", a.len());
}

#[test]
fn grad_cam_maps_and_overlays_match_pytorch_grad_cam() {
    let reference = reference();
    for (model, weights, class) in jobs() {
        let id = ModelId::from_name(model).unwrap();
        let classifier = Classifier::new(id, &weights, tch::Device::Cpu).unwrap();
        let dir = reference.join(job_dir(model, class));
        let classes: HashMap<String, usize> =
            serde_json::from_str(&std::fs::read_to_string(dir.join("classes.json")).unwrap()).unwrap();
        for name in IMAGES {
            let what = format!("{model} ({}) on {name}", job_dir(model, class));
            let image = preprocess::read_image(&common::image(name)).unwrap();
            let explanation = classifier.explain(&image, class).unwrap();
            assert_eq!(explanation.class, classes[name], "{what}: class");
            let ours = map_values(&explanation.map);
            let theirs = read_f32(&dir.join(format!("{name}.cam.f32")));
            let size = classifier.preset().size as usize;
            assert_eq!((ours.len(), theirs.len()), (size * size, size * size), "{what}: map size");
            let diff = common::max_abs_diff(&ours, &theirs);
            eprintln!("{what}: class {}, max |Δmap| = {diff:.2e}", explanation.class);
            assert!(diff <= MAP_TOLERANCE, "{what}: max |Δmap| {diff:e} > {MAP_TOLERANCE:e}");
            // A map that proves something: it spans [0, 1] and is not flat.
            let (min, max) = ours.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            assert!(min == 0.0 && max > 0.99, "{what}: the map spans {min}..{max}");

            let region = cam::input_region(image.cols(), image.rows(), classifier.preset());
            let overlay = cam::overlay(&image, &explanation.map, region).unwrap();
            let mask = cam::mask(image.cols(), image.rows(), &explanation.map, region).unwrap();
            let theirs = imread(&dir.join(format!("{name}.overlay.png")));
            assert_overlays_agree(&what, &overlay, &theirs, &mask, 255.0 * diff + 1e-3);
        }
    }
}

/// The blend alone: show_cam_on_image of our own map is our overlay, within 1 grey level but where OpenCV's
/// resize in the two builds rounds across a level boundary.
#[test]
fn the_overlay_is_show_cam_on_image() {
    let classifier =
        Classifier::new(ModelId::EfficientnetLite0, &common::real_lite0_weights(), tch::Device::Cpu).unwrap();
    // A fixed place, so that the cached reference run is found again.
    let dir = common::stable_dir("cam-overlay");
    for name in IMAGES {
        let path = common::image(name);
        let image = preprocess::read_image(&path).unwrap();
        let map = classifier.explain(&image, None).unwrap().map;
        let map_file = dir.join(format!("{name}.f32"));
        let bytes: Vec<u8> = map_values(&map).iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&map_file, bytes).unwrap();
        let out = dir.join(format!("{name}.png"));
        let size = map.rows().to_string();
        let args = crate::os_args![
            "scripts/cam_reference.py",
            "overlay",
            "--map",
            &map_file,
            "--size",
            size,
            "--image",
            &path,
            "--out",
            &out
        ];
        let script = common::root().join("scripts/cam_reference.py");
        let run = common::python_cached(&args, &[&script, &map_file, &path], &[&out]);
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let region = cam::input_region(image.cols(), image.rows(), classifier.preset());
        let ours = cam::overlay(&image, &map, region).unwrap();
        let mask = cam::mask(image.cols(), image.rows(), &map, region).unwrap();
        assert_overlays_agree(name, &ours, &imread(&out), &mask, 1e-3);
    }
}

/// With its real weights, Lite0 looks at the object: the map's centre of mass (in image coordinates) lies in a
/// box drawn by hand around the cat's face in chelsea.png and around the cup (without the saucer) in coffee.png.
#[test]
fn lite0_looks_at_the_cat_and_the_cup() {
    let classifier =
        Classifier::new(ModelId::EfficientnetLite0, &common::real_lite0_weights(), tch::Device::Cpu).unwrap();
    // (x0, y0, x1, y1) in the photo's pixels.
    for (name, (x0, y0, x1, y1)) in [("chelsea.png", (90, 40, 380, 280)), ("coffee.png", (170, 15, 420, 250))] {
        let image = preprocess::read_image(&common::image(name)).unwrap();
        let map = classifier.explain(&image, None).unwrap().map;
        let values = map_values(&map);
        let size = map.cols() as usize;
        let (mut sx, mut sy, mut sum) = (0.0_f64, 0.0_f64, 0.0_f64);
        for (i, &v) in values.iter().enumerate() {
            sx += (i % size) as f64 * v as f64;
            sy += (i / size) as f64 * v as f64;
            sum += v as f64;
        }
        let x = sx / sum * image.cols() as f64 / size as f64;
        let y = sy / sum * image.rows() as f64 / size as f64;
        eprintln!("{name}: centre of mass ({x:.0}, {y:.0}), box ({x0}, {y0})–({x1}, {y1})");
        assert!(
            (x0 as f64..=x1 as f64).contains(&x) && (y0 as f64..=y1 as f64).contains(&y),
            "{name}: centre of mass ({x:.0}, {y:.0}) outside ({x0}, {y0})–({x1}, {y1})"
        );
    }
}

fn run(args: &[&std::ffi::OsStr]) -> (Option<i32>, String, String) {
    let out = Command::cargo_bin("classify-image").unwrap().args(args).output().unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

/// The command line draws the same overlay under the caption: the written image is pytorch-grad-cam's
/// overlay below the caption's rows, for the top-1 and for a class named by label.
#[test]
fn the_command_line_writes_the_overlay() {
    let reference = reference();
    let dir = tempfile::tempdir().unwrap();
    let photo = common::image("chelsea.png");
    for (extra, class) in [(None, None), (Some("tiger cat"), Some(NAMED))] {
        let out = dir.path().join("out.png");
        let mut args: Vec<&std::ffi::OsStr> =
            ["-m", "efficientnet_lite0", "--explain", "-o"].iter().map(|a| a.as_ref()).collect();
        args.push(out.as_os_str());
        args.push(photo.as_os_str());
        if let Some(label) = extra {
            args.extend([std::ffi::OsStr::new("--explain-class"), label.as_ref()]);
        }
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stdout.contains("Egyptian_cat"), "{stdout}");
        let ours = imread(&out);
        let dir = reference.join(job_dir("efficientnet_lite0", class));
        let theirs = imread(&dir.join("chelsea.png.overlay.png"));
        let map = read_f32(&dir.join("chelsea.png.cam.f32"));
        let map = core::Mat::from_slice(&map).unwrap().reshape(1, 224).unwrap().try_clone().unwrap();
        let full = core::Rect::new(0, 0, ours.cols(), ours.rows());
        let mask = cam::mask(ours.cols(), ours.rows(), &map, full).unwrap();
        // The seed's caption is drawn at (10, 30) with HERSHEY 0.8: rows 0..40 hold it.
        let below = core::Rect::new(0, 40, ours.cols(), ours.rows() - 40);
        let crop = |m: &core::Mat, r: core::Rect| core::Mat::roi(m, r).unwrap().try_clone().unwrap();
        let what = format!("--explain-class {extra:?}");
        assert_overlays_agree(&what, &crop(&ours, below), &crop(&theirs, below), &crop(&mask, below), 0.01);
        let top = core::Rect::new(0, 0, ours.cols(), 40);
        let caption = differences(&crop(&ours, top), &crop(&theirs, top));
        let changed: usize = caption.iter().filter(|(d, _)| **d > 50).map(|(_, n)| n).sum();
        assert!(changed > 300, "{what}: no caption over the overlay ({changed} values differ by more than 50)");
    }
}

/// A folder: each annotated copy is the one-image run's, and the report is the one-image run's.
#[test]
fn a_folder_is_explained_image_by_image() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in"), dir.path().join("out"));
    std::fs::create_dir_all(&input).unwrap();
    for name in IMAGES {
        std::fs::copy(common::image(name), input.join(name)).unwrap();
    }
    let lite0 = ["-m", "efficientnet_lite0", "--explain", "--format", "jsonl", "-k", "1"].map(std::ffi::OsStr::new);
    let mut args = lite0.to_vec();
    args.extend([std::ffi::OsStr::new("--output-dir"), output.as_os_str(), input.as_os_str()]);
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), IMAGES.len(), "{stdout}");
    for name in IMAGES {
        let (single, photo) = (dir.path().join(format!("single-{name}")), input.join(name));
        let mut args = lite0.to_vec();
        args.extend([std::ffi::OsStr::new("-o"), single.as_os_str(), photo.as_os_str()]);
        let (code, one, stderr) = run(&args);
        assert_eq!(code, Some(0), "{stderr}");
        let record = stdout.lines().find(|l| l.contains(name)).unwrap();
        assert_eq!(record.replace(&*input.to_string_lossy(), ""), one.trim().replace(&*input.to_string_lossy(), ""));
        assert_eq!(differences(&imread(&single), &imread(&output.join(name))).keys().max(), Some(&0), "{name}");
    }
}

#[test]
fn bad_explain_requests_fail_with_one_line() {
    let photo = common::image("chelsea.png");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");
    for (class, needle) in
        [("crane", "names 2 classes (134, 517)"), ("unicorn", "is not a class"), ("1000", "is not a class")]
    {
        let (code, stdout, stderr) = run(&[
            "-m".as_ref(),
            "efficientnet_lite0".as_ref(),
            "--explain-class".as_ref(),
            class.as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
            photo.as_os_str(),
        ]);
        assert_eq!(code, Some(2), "--explain-class {class}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "--explain-class {class}: {stderr}");
        assert!(!out.exists(), "--explain-class {class} wrote {}", out.display());
        // With the built-in labels it is refused before the model loads: nothing on stdout.
        assert!(stdout.is_empty(), "--explain-class {class}: {stdout}");
    }
    // A TorchScript module has no target layer.
    let export = common::export_fixture();
    let (module, labels) = (export.join("scripted_mobilenet_v2.pt"), export.join("scripted.labels.txt"));
    let (code, _, stderr) = run(&[
        "--torchscript".as_ref(),
        module.as_os_str(),
        "--size".as_ref(),
        "128".as_ref(),
        "--labels".as_ref(),
        labels.as_os_str(),
        "--explain".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        photo.as_os_str(),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("Grad-CAM target layer") && stderr.contains("drop --explain"), "{stderr}");
    assert!(!out.exists());
}

/// docs/GUIDE.md's table of target layers is the registry's: a row for each family, naming the target layer of
/// every one of its architectures.
#[test]
fn the_guides_target_layers_are_the_registrys() {
    let guide = std::fs::read_to_string(common::root().join("docs/GUIDE.md")).unwrap();
    let rows: HashMap<String, String> = guide
        .lines()
        .skip_while(|l| !l.starts_with("| family | target layer |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').splitn(2, '|').map(str::trim).collect();
            (cells[0].to_string(), cells[1].to_string())
        })
        .collect();
    let families: std::collections::BTreeSet<&str> = classify_image::MODELS.iter().map(|m| m.family).collect();
    assert_eq!(rows.len(), families.len(), "one row per family: {families:?}");
    for m in classify_image::MODELS.iter() {
        let row = rows.get(m.family).unwrap_or_else(|| panic!("docs/GUIDE.md has no row for {}", m.family));
        assert!(row.contains(&format!("`{}`", m.cam_layer)), "{}: {} is not in {row:?}", m.name, m.cam_layer);
    }
}
