#!/usr/bin/env python3
"""The Python reference for classify-image's tests: makes weights fixtures and the logits they must give.

  reference.py fixture --model NAME --out-dir DIR --seed N IMAGE...
      Builds NAME as classify_image.py does, gives it calibrated random weights (SPEC §4: BatchNorm statistics
      from a train-mode pass over smooth noise, jittered affine terms, classifier scaled to logits of std ~3, so
      that logits depend on the input and the top-6 gaps are >= 2e-3), saves the state dict in both torch.save
      containers (NAME.zip.pth, NAME.legacy.pth; DenseNet under its 2017 key names), and writes
      NAME.logits.json: {image: [1000 logits]} with the seed's preprocessing.
  reference.py logits --model NAME --weights FILE IMAGE...
      Prints the logits JSON for existing weights (e.g. the real EfficientNet-Lite0 file).
  reference.py malicious --out FILE --marker PATH
      Writes a zip-container .pth whose pickle calls os.system("touch PATH") when torch.load runs it unsafely.
"""
import argparse
import json
import os
import re
import sys

import cv2
import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import classify_image  # noqa: E402
from pyimagesearch import config  # noqa: E402

MIN_GAP = 2e-3


def normalization(name):
    return config.MODEL_NORMALIZATION.get(name, (config.MEAN, config.STD))


def inputs(name, images):
    mean, std = normalization(name)
    return torch.from_numpy(np.concatenate([classify_image.preprocess_image(cv2.imread(p), mean, std) for p in images]))


def smooth_noise(gen, n, size, name):
    """Upsampled low-resolution noise, normalised like an image."""
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in normalization(name))
    low = torch.rand(n, 3, 8, 8, generator=gen)
    return (nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False) - mean) / std


def classifier_layer(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


@torch.no_grad()
def calibrate(model, name, photos, gen):
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    if bns:
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # a cumulative average over the pass
        model.train()
        model(smooth_noise(gen, 8, 299 if name == "inception" else 224, name))
        for bn in bns:
            bn.weight.mul_(1 + 0.2 * torch.randn(bn.weight.shape, generator=gen))
            bn.bias.add_(0.1 * torch.randn(bn.bias.shape, generator=gen))
    model.eval()
    fc = classifier_layer(model)
    scale = 3.0 / model(photos[:1]).std().item()
    fc.weight.mul_(scale)
    fc.bias.mul_(scale)


def top_gap(logits):
    top = logits.sort(dim=-1, descending=True).values[:, :6]
    return (top[:, :-1] - top[:, 1:]).min().item()


def legacy_densenet_keys(state_dict):
    pattern = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))(\d)\.(weight|bias|running_mean|running_var)$")
    return type(state_dict)((pattern.sub(r"\1.\2.\3", k), v) for k, v in state_dict.items())


def fixture(args):
    photos = inputs(args.model, args.images)
    for seed in range(args.seed, args.seed + 20):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = classify_image.CONSTRUCTORS[args.model]()
        calibrate(model, args.model, photos, gen)
        with torch.no_grad():
            logits = model(photos)
        gap, std = top_gap(logits), logits.std(dim=-1).min().item()
        if gap >= MIN_GAP and std > 1.0:
            break
        print(f"seed {seed}: top-6 gap {gap:.2e}, logit std {std:.2f}; trying the next seed", file=sys.stderr)
    else:
        sys.exit(f"reference.py: no seed gave top-6 gaps >= {MIN_GAP} for {args.model}")
    state_dict = model.state_dict()
    if args.model == "densenet":
        state_dict = legacy_densenet_keys(state_dict)
    os.makedirs(args.out_dir, exist_ok=True)
    out = os.path.join(args.out_dir, args.model)
    torch.save(state_dict, out + ".zip.pth")
    torch.save(state_dict, out + ".legacy.pth", _use_new_zipfile_serialization=False)
    dump_logits(out + ".logits.json", args.images, logits)
    print(f"{args.model}: seed {seed}, top-6 gap {gap:.2e}, logit std {std:.2f}", file=sys.stderr)


def dump_logits(path, images, logits):
    data = {os.path.basename(p): row.tolist() for p, row in zip(images, logits)}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def logits_cmd(args):
    model = classify_image.load_local_state_dict(classify_image.CONSTRUCTORS[args.model](), args.weights).eval()
    with torch.no_grad():
        logits = model(inputs(args.model, args.images))
    dump_logits(args.out, args.images, logits)


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def malicious(args):
    torch.save({"features.0.weight": torch.zeros(1), "evil": Payload(args.marker)}, args.out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fixture")
    f.add_argument("--model", required=True, choices=list(classify_image.CONSTRUCTORS))
    f.add_argument("--out-dir", required=True)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("images", nargs="+")
    lg = sub.add_parser("logits")
    lg.add_argument("--model", required=True, choices=list(classify_image.CONSTRUCTORS))
    lg.add_argument("--weights", required=True)
    lg.add_argument("--out", required=True)
    lg.add_argument("images", nargs="+")
    m = sub.add_parser("malicious")
    m.add_argument("--out", required=True)
    m.add_argument("--marker", required=True)
    args = ap.parse_args()
    {"fixture": fixture, "logits": logits_cmd, "malicious": malicious}[args.cmd](args)


if __name__ == "__main__":
    main()
