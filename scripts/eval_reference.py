#!/usr/bin/env python3
"""PyTorch's own predictions on labelled photos, for `classify-image eval`'s tests.

  eval_reference.py top5 --model NAME --weights FILE --out JSON IMAGE...
      Builds NAME as scripts/classify_image.py does, loads FILE with its load_local_state_dict, prepares each
      image the seed's way at the model's size, mean and std (reference.inputs), and writes
      {IMAGE: {"top5": [class indices, most likely first], "gap": top-1 logit minus top-2 logit}}, IMAGE as
      given. The gap tells a near-tie, where two correct float32 implementations may pick different classes.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import classify_image  # noqa: E402
import reference  # noqa: E402

# Images prepared and run at a time: bounded memory, and the batched kernels of a real evaluation.
CHUNK = 50


@torch.no_grad()
def top5(args):
    model = classify_image.load_local_state_dict(reference.construct(args.model), args.weights).eval()
    preset = reference.preset_of(args.model)
    result = {}
    for start in range(0, len(args.images), CHUNK):
        paths = args.images[start:start + CHUNK]
        logits = model(reference.inputs(preset, paths))
        values, indices = logits.topk(5, dim=-1)
        for path, v, i in zip(paths, values, indices):
            result[path] = {"top5": i.tolist(), "gap": (v[0] - v[1]).item()}
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f)
    os.replace(tmp, args.out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("top5")
    t.add_argument("--model", required=True, choices=list(reference.CONSTRUCTORS))
    t.add_argument("--weights", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("images", nargs="+")
    args = ap.parse_args()
    {"top5": top5}[args.cmd](args)


if __name__ == "__main__":
    main()
