# The original script of the tutorial (PyImageSearch, "PyTorch image classification with pre-trained networks",
# as translated in ../shared/seed), kept as the reference that classify-image must match line for line.
#
# What differs from the original, and why (every other line is as published):
#   1. --weights FILE loads a local state dict instead of downloading (`pretrained=True` cannot reach
#      download.pytorch.org here); the models are built as `pretrained=True` builds them, without weights.
#   2. --output FILE writes the annotated image instead of showing it, so it can be compared headless.
#   3. efficientnet_lite0 is one more choice, with its own normalisation (config.MODEL_PRESETS), so
#      preprocess_image takes the size, mean and std as arguments (the seed's by default).
#   4. The constructors sit in CONSTRUCTORS and the script body under `if __name__ == "__main__"`, so that
#      reference.py reuses this file's preprocessing, constructors and weight loading. The script still
#      builds every model on every run, as the original does.

# import the necessary packages
from pyimagesearch import config
from torchvision import models
import numpy as np
import argparse
import re
import torch
import cv2
from efficientnet_lite_pytorch import EfficientNet

def preprocess_image(image, size=config.IMAGE_SIZE, mean=config.MEAN, std=config.STD):
	# swap the color channels from BGR to RGB, resize it, and scale
	# the pixel values to [0, 1] range
	image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
	image = cv2.resize(image, (size, size))
	image = image.astype("float32") / 255.0

	# subtract ImageNet mean, divide by ImageNet standard deviation,
	# set "channels first" ordering, and add a batch dimension
	image -= mean
	image /= std
	image = np.transpose(image, (2, 0, 1))
	image = np.expand_dims(image, 0)

	# return the preprocessed image
	return image

# (change 4) the constructors of the original's MODELS dictionary, as `pretrained=True` calls them
CONSTRUCTORS = {
	"vgg16": lambda: models.vgg16(weights=None),
	"vgg19": lambda: models.vgg19(weights=None),
	"inception": lambda: models.inception_v3(weights=None, aux_logits=True, transform_input=True,
		init_weights=False),
	"densenet": lambda: models.densenet121(weights=None),
	"resnet": lambda: models.resnet50(weights=None),
	"efficientnet_lite0": lambda: EfficientNet.from_name("efficientnet-lite0"),
}

def load_local_state_dict(model, path):
	# (change 1) what `pretrained=True` does after downloading: torch.load, the DenseNet key renaming of
	# torchvision's _load_state_dict, then load_state_dict
	state_dict = torch.load(path, map_location="cpu", weights_only=True)
	pattern = re.compile(
		r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")
	for key in list(state_dict.keys()):
		res = pattern.match(key)
		if res:
			state_dict[res.group(1) + res.group(2)] = state_dict.pop(key)
	model.load_state_dict(state_dict, strict=not isinstance(model, models.Inception3))
	return model

if __name__ == "__main__":
	# construct the argument parser and parse the arguments
	ap = argparse.ArgumentParser()
	ap.add_argument("-i", "--image", required=True,
		help="path to the input image")
	ap.add_argument("-m", "--model", type=str, default="vgg16",
		choices=list(CONSTRUCTORS),
		help="name of pre-trained network to use")
	ap.add_argument("--weights", required=True, help="(change 1) local state dict to load")
	ap.add_argument("--output", help="(change 2) write the annotated image here instead of showing it")
	args = vars(ap.parse_args())

	# define a dictionary that maps model names to their classes
	# inside torchvision
	MODELS = {name: build() for (name, build) in CONSTRUCTORS.items()}

	# load our the network weights from disk, flash it to the current
	# device, and set it to evaluation mode
	print("[INFO] loading {}...".format(args["model"]))
	model = load_local_state_dict(MODELS[args["model"]], args["weights"]).to(config.DEVICE)
	model.eval()

	# load the image from disk, clone it (so we can draw on it later),
	# and preprocess it
	print("[INFO] loading image...")
	image = cv2.imread(args["image"])
	orig = image.copy()
	image = preprocess_image(image, *config.preset(args["model"]))

	# convert the preprocessed image to a torch tensor and flash it to
	# the current device
	image = torch.from_numpy(image)
	image = image.to(config.DEVICE)

	# load the preprocessed the ImageNet labels
	print("[INFO] loading ImageNet labels...")
	imagenetLabels = dict(enumerate(open(config.IN_LABELS)))

	# classify the image and extract the predictions
	print("[INFO] classifying image with '{}'...".format(args["model"]))
	logits = model(image)
	probabilities = torch.nn.Softmax(dim=-1)(logits)
	sortedProba = torch.argsort(probabilities, dim=-1, descending=True)

	# loop over the predictions and display the rank-5 predictions and
	# corresponding probabilities to our terminal
	for (i, idx) in enumerate(sortedProba[0, :5]):
		print("{}. {}: {:.2f}%".format
			(i, imagenetLabels[idx.item()].strip(),
			probabilities[0, idx.item()] * 100))

	# draw the top prediction on the image and display the image to
	# our screen
	(label, prob) = (imagenetLabels[probabilities.argmax().item()],
		probabilities.max().item())
	cv2.putText(orig, "Label: {}, {:.2f}%".format(label.strip(), prob * 100),
		(10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 255), 2)
	if args["output"]:
		cv2.imwrite(args["output"], orig)
	else:
		cv2.imshow("Classification", orig)
		cv2.waitKey(0)
