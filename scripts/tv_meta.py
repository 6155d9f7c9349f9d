#!/usr/bin/env python3
"""torchvision's classification zoo as torchvision itself describes it, for classify-image's registry and tests.

  tv_meta.py registry --out JSON
      Every builder of `torchvision.models.list_models(module=torchvision.models)` with each of its weights
      that classifies ImageNet-1k (VGG-16's IMAGENET1K_FEATURES has no classifier and is left out), the
      DEFAULT first: {builder: {"default": TAG, "weights": [{tag, url, file, acc1, acc5, params, gmacs,
      file_mb, resize, crop, interpolation, antialias, mean, std, min_size, categories}]}}. `gmacs` is
      torchvision's "GFLOPS" figure (multiply-accumulates); `categories` is the number of classes, and
      `imagenet_categories` says whether they are torchvision's ImageNet list, in its order.
  tv_meta.py state-dicts --out JSON NAME[.TAG]...
      The keys and shapes of each model's state_dict, as torchvision builds the model for those weights
      (DEFAULT without a tag: e.g. ViT-B/16's SWAG_E2E_V1 weights make a 384x384 model), on the meta device,
      so that nothing is allocated or downloaded: {NAME[.TAG]: [[key, shape], ...]}.
  tv_meta.py rust BUILDER...
      The registry's `Weights` entries of those builders as Rust source, from the same metadata: what to paste
      into a family's file when torchvision adds a model or weights. The registry test then checks them.
"""
import argparse
import json
import os
import sys

import torch
from torchvision import models
from torchvision.models._meta import _IMAGENET_CATEGORIES

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def classifying_weights(builder):
    """The builder's weights that classify ImageNet-1k, DEFAULT first, then in torchvision's order."""
    enum = models.get_model_weights(builder)
    found = [w for w in enum if w.meta.get("categories") is not None]
    default = enum.DEFAULT
    return [default] + [w for w in found if w != default]


def describe(weights):
    m, t = weights.meta, weights.transforms()
    (resize,), (crop,) = t.resize_size, t.crop_size
    metrics = m["_metrics"]["ImageNet-1K"]
    return {
        "tag": weights.name,
        "url": weights.url,
        "file": weights.url.rsplit("/", 1)[1],
        "acc1": metrics["acc@1"],
        "acc5": metrics["acc@5"],
        "params": m["num_params"],
        "gmacs": m["_ops"],
        "file_mb": m["_file_size"],
        "resize": resize,
        "crop": crop,
        "interpolation": t.interpolation.value,
        "antialias": bool(t.antialias),
        "mean": list(t.mean),
        "std": list(t.std),
        "min_size": list(m["min_size"]),
        "categories": len(m["categories"]),
        "imagenet_categories": list(m["categories"]) == list(_IMAGENET_CATEGORIES),
    }


def registry(args):
    data = {}
    for builder in models.list_models(module=models):
        ws = classifying_weights(builder)
        data[builder] = {"default": ws[0].name, "weights": [describe(w) for w in ws]}
    with open(args.out, "w") as f:
        json.dump(data, f, indent=1)


def state_dicts(args):
    import reference
    from unittest import mock
    from torchvision.models import regnet

    # RegNet's builders compute the stages' widths with tensors and read them back (`tolist`), which meta
    # tensors cannot do: that arithmetic runs on the CPU.
    from_init_params = regnet.BlockParams.from_init_params.__func__

    def on_cpu(cls, *a, **k):
        with torch.device("cpu"):
            return from_init_params(cls, *a, **k)

    data = {}
    for spec in args.models:
        name, _, tag = spec.partition(".")
        with torch.device("meta"), mock.patch.object(regnet.BlockParams, "from_init_params", classmethod(on_cpu)):
            model = reference.pretrained_like(name, tag or None)
        data[spec] = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    with open(args.out, "w") as f:
        json.dump(data, f)


def rust(args):
    for builder in args.builders:
        print(f"// {builder}")
        for w in classifying_weights(builder):
            d = describe(w)
            interp = "bicubic" if d["interpolation"] == "bicubic" else "bilinear"
            lines = [
                f'tag: "{d["tag"]}",',
                f'file: WeightsFile::published("{d["url"]}"),',
                f'accuracy: Accuracy {{ top1: {d["acc1"]}, top5: Some({d["acc5"]}) }},',
                f'eval: Eval::{interp}({d["resize"]}, {d["crop"]}),',
            ]
            if d["mean"] != [0.485, 0.456, 0.406] or d["std"] != [0.229, 0.224, 0.225]:
                lines.append(f'mean: {d["mean"]},')
                lines.append(f'std: {d["std"]},')
            lines += [f'file_mb: {d["file_mb"]},', f'gmacs: Some({d["gmacs"]}),', "..Weights::TORCHVISION"]
            print("Weights {\n    " + "\n    ".join(lines) + "\n},")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("registry")
    r.add_argument("--out", required=True)
    s = sub.add_parser("state-dicts")
    s.add_argument("--out", required=True)
    s.add_argument("models", nargs="+")
    g = sub.add_parser("rust")
    g.add_argument("builders", nargs="+")
    args = ap.parse_args()
    {"registry": registry, "state-dicts": state_dicts, "rust": rust}[args.cmd](args)


if __name__ == "__main__":
    main()
