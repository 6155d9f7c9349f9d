# import the necessary packages
import os

import torch

# specify image dimension
IMAGE_SIZE = 224

# specify ImageNet mean and standard deviation
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]

# determine the device we will be using for inference
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

# specify path to the ImageNet labels
# (classify-image: the project keeps the file in labels/, so the path is made absolute)
IN_LABELS = os.path.join(os.path.dirname(__file__), "..", "..", "labels", "ilsvrc2012_wordnet_lemmas.txt")

# classify-image addition: the EfficientNet-Lite models expect inputs scaled to [-1, 1], not ImageNet's
# normalisation, at their own resolution: (image size, mean, std).
MODEL_PRESETS = {
    "efficientnet_lite0": (224, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
    "efficientnet_lite1": (240, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
    "efficientnet_lite2": (260, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
}


def preset(model):
    """(image size, mean, std) of a model: the seed's, unless MODEL_PRESETS says otherwise."""
    return MODEL_PRESETS.get(model, (IMAGE_SIZE, MEAN, STD))
