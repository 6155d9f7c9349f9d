# The Python original (classify_image.py) as a careful PyTorch user would write it, for the benchmarks
# (scripts/bench.py, docs/BENCHMARKS.md): the same preprocessing, weights loading, output lines and annotation, but
#   - it builds only the chosen model, not all five;
#   - it runs under torch.inference_mode();
#   - it takes a folder as well as an image, and classifies a folder's images in batches (--batch-size), each
#     annotated copy going to --output-dir.
# It is the fair baseline that classify-image must beat; classify_image.py stays the seed, line for line.
import argparse
import os

import cv2
import numpy as np
import torch

from classify_image import CONSTRUCTORS, load_local_state_dict, preprocess_image
from pyimagesearch import config


def images_in(path):
	if os.path.isdir(path):
		return sorted(os.path.join(path, f) for f in os.listdir(path))
	return [path]


def main():
	ap = argparse.ArgumentParser()
	ap.add_argument("-i", "--image", required=True, help="an image, or a folder of images")
	ap.add_argument("-m", "--model", default="vgg16", choices=list(CONSTRUCTORS))
	ap.add_argument("--weights", required=True, help="local state dict to load")
	ap.add_argument("--output", help="the annotated image (one image)")
	ap.add_argument("--output-dir", help="the annotated images (a folder)")
	ap.add_argument("--batch-size", type=int, default=8)
	args = ap.parse_args()

	model = load_local_state_dict(CONSTRUCTORS[args.model](), args.weights).to(config.DEVICE).eval()
	labels = [line.strip() for line in open(config.IN_LABELS)]
	paths = images_in(args.image)
	with torch.inference_mode():
		for start in range(0, len(paths), args.batch_size):
			batch = paths[start:start + args.batch_size]
			originals = [cv2.imread(p) for p in batch]
			inputs = np.concatenate([preprocess_image(im, *config.preset(args.model)) for im in originals])
			probabilities = torch.softmax(model(torch.from_numpy(inputs).to(config.DEVICE)), dim=-1)
			order = torch.argsort(probabilities, dim=-1, descending=True)
			for row, (path, orig) in enumerate(zip(batch, originals)):
				print(path)
				for i, idx in enumerate(order[row, :5].tolist()):
					print("{}. {}: {:.2f}%".format(i, labels[idx], probabilities[row, idx] * 100))
				best = order[row, 0].item()
				cv2.putText(orig, "Label: {}, {:.2f}%".format(labels[best], probabilities[row, best].item() * 100),
					(10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 255), 2)
				if args.output_dir:
					cv2.imwrite(os.path.join(args.output_dir, os.path.basename(path)), orig)
				elif args.output:
					cv2.imwrite(args.output, orig)


if __name__ == "__main__":
	main()
