#!/usr/bin/env python3
"""The Grad-CAM reference for classify-image's tests: pytorch-grad-cam (PyPI grad-cam) on the same weights.

  cam_reference.py cam --out-dir DIR --job MODEL WEIGHTS LAYER RESHAPE CLASS [--job ...] IMAGE...
      For each job, builds MODEL as reference.py does, loads WEIGHTS, and for each image (prepared as the seed
      does, at the model's size, mean and std) runs pytorch-grad-cam's GradCAM with target layer
      `model.LAYER` (e.g. layer4[-1]), its output made image-shaped by the reshape_transform RESHAPE (none;
      tokens: ViT's, as pytorch-grad-cam's README writes it; channels-last: [N, H, W, C] to [N, C, H, W]), for
      the class CLASS (an index, or `top` for the most likely one).
      Writes DIR/MODEL-CLASS/IMAGE.cam.f32 (the map at the input size, raw float32),
      DIR/MODEL-CLASS/IMAGE.overlay.png (as `overlay` draws it) and DIR/MODEL-CLASS/classes.json
      ({image: class}).
  cam_reference.py overlay --map F32 --size N --image IMAGE --out PNG
      show_cam_on_image of the BGR image scaled to [0, 1] with the N×N map (raw float32) resized to the
      image by OpenCV, as pytorch-grad-cam's README lays a map over an image.
"""
import argparse
import json
import math
import os
import sys

import cv2
import numpy as np
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import classify_image  # noqa: E402
import reference  # noqa: E402


def target_layer(model, path):
    """`model.<path>`, e.g. `features[-1]`, resolved on the module tree."""
    return eval("model." + path, {}, {"model": model})


def vit_tokens(tensor):
    """pytorch-grad-cam's README's reshape_transform for vision transformers: the class token dropped, the
    patch tokens laid out on their square grid, channels first."""
    side = math.isqrt(tensor.size(1) - 1)
    result = tensor[:, 1:, :].reshape(tensor.size(0), side, side, tensor.size(2))
    return result.transpose(2, 3).transpose(1, 2)


RESHAPES = {"none": None, "tokens": vit_tokens, "channels-last": lambda t: t.permute(0, 3, 1, 2)}


def overlay(image, grayscale):
    mask = cv2.resize(grayscale, (image.shape[1], image.shape[0]))
    return show_cam_on_image(np.float32(image) / 255, mask)


def run(job, images, out_dir):
    name, weights, layer, reshape, cls = job
    model = classify_image.load_local_state_dict(reference.construct(name), weights).eval()
    out = os.path.join(out_dir, f"{name}-{cls}")
    os.makedirs(out, exist_ok=True)
    classes = {}
    cam = GradCAM(model=model, target_layers=[target_layer(model, layer)], reshape_transform=RESHAPES[reshape])
    for path in images:
        tensor = reference.inputs(reference.preset_of(name), [path])
        targets = None if cls == "top" else [ClassifierOutputTarget(int(cls))]
        grayscale = cam(input_tensor=tensor, targets=targets)[0]
        base = os.path.join(out, os.path.basename(path))
        grayscale.astype("<f4").tofile(base + ".cam.f32")
        cv2.imwrite(base + ".overlay.png", overlay(cv2.imread(path), grayscale))
        classes[os.path.basename(path)] = int(cam.outputs.argmax()) if cls == "top" else int(cls)
    with open(os.path.join(out, "classes.json"), "w") as f:
        json.dump(classes, f)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cam")
    c.add_argument("--out-dir", required=True)
    c.add_argument("--job", nargs=5, action="append", required=True,
                   metavar=("MODEL", "WEIGHTS", "LAYER", "RESHAPE", "CLASS"))
    c.add_argument("images", nargs="+")
    o = sub.add_parser("overlay")
    o.add_argument("--map", required=True)
    o.add_argument("--size", type=int, required=True)
    o.add_argument("--image", required=True)
    o.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.cmd == "cam":
        for job in args.job:
            run(job, args.images, args.out_dir)
    else:
        grayscale = np.fromfile(args.map, "<f4").reshape(args.size, args.size)
        cv2.imwrite(args.out, overlay(cv2.imread(args.image), grayscale))


if __name__ == "__main__":
    main()
