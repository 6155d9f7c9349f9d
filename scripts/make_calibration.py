#!/usr/bin/env python3
"""Build calibration/: the photos that int8 calibration uses by default, from ajschumacher/imagen.

Usage: scripts/make_calibration.py IMAGEN_REPO [OUT_DIR]
  IMAGEN_REPO  a clone of github.com/ajschumacher/imagen, bare or not (read through git, at SOURCE_COMMIT)
  OUT_DIR      default calibration/ at the repository root; replaced as a whole

The photos of imagen whose WordNet id is NOT one of the 1000 ImageNet-1k classes (250, in 50 categories such as
`person`), so that none of them is in evalset/ (scripts/make_evalset.py takes the other 750): every other one of
them in name order, COUNT photos, prepared as evalset's are (decoded as cv2.imread does, shorter side 256 with
INTER_AREA, JPEG quality 90) and written to OUT_DIR/NAME.jpg. Calibration measures the ranges activations take on
natural photos; it needs no labels. OUT_DIR/manifest.csv lists path,sha256,original; OUT_DIR/README.md says where
the photos come from.
"""
import csv
import hashlib
import pathlib
import re
import sys

import cv2
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import make_evalset as ev  # noqa: E402

COUNT = 100


def build(repo, out):
    index, _ = ev.class_indices()
    outside = []
    for original, data in ev.source_files(repo):
        m = re.fullmatch(r"(n\d{8})_(\d+)_(.+)\.jpg", original)
        if not m:
            sys.exit(f"make_calibration: unexpected file name {original}")
        if m.group(1) not in index:
            outside.append((original, data, f"{m.group(1)}_{m.group(2)}.jpg"))
    chosen = outside[::2][:COUNT]
    if len(chosen) != COUNT:
        sys.exit(f"make_calibration: {len(outside)} photos outside ImageNet-1k, too few for {COUNT}")
    rows = []
    for original, data, path in chosen:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            sys.exit(f"make_calibration: OpenCV cannot decode {original}")
        ok, jpeg = cv2.imencode(".jpg", ev.resized(image), [cv2.IMWRITE_JPEG_QUALITY, ev.JPEG_QUALITY])
        if not ok:
            sys.exit(f"make_calibration: OpenCV cannot encode {original}")
        (out / path).write_bytes(jpeg.tobytes())
        rows.append([path, hashlib.sha256(jpeg.tobytes()).hexdigest(), original])
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["path", "sha256", "original"])
        writer.writerows(rows)
    size = sum((out / r[0]).stat().st_size for r in rows)
    (out / "README.md").write_text(readme(len(outside), size))
    return size


def readme(outside, size):
    return f"""# calibration: {COUNT} photos for int8 calibration

The photos `classify-image` calibrates int8 networks on by default (`--precision int8` without `--calibration`):
built into the binary, read in name order. Calibration measures the range each activation takes on natural
photos, so these need no labels.

## Where the photos come from

{ev.SOURCE}, commit `{ev.SOURCE_COMMIT}`, the source of `evalset/` as well (its README has the licence
situation, which is the same here): of its {outside} photos whose WordNet id is not one of the 1000 ImageNet-1k
classes (categories such as `person`), every other one in name order, {COUNT} in all. None of them is in
`evalset/`, which holds the other 750, so an accuracy measured there is not measured on calibration photos.

`scripts/make_calibration.py` rebuilt this folder as `scripts/make_evalset.py` builds evalset/: each photo decoded
by OpenCV ({cv2.__version__}), its shorter side resized to {ev.SHORT_SIDE} pixels (`INTER_AREA`), written as
JPEG quality {ev.JPEG_QUALITY}; {size / 1e6:.1f} MB in all. `manifest.csv` lists `path`, `sha256` and
`original` (the file name in the source).
"""


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    repo = pathlib.Path(sys.argv[1])
    out = pathlib.Path(sys.argv[2]) if len(sys.argv) == 3 else ev.ROOT / "calibration"
    size = ev.replace_folder(out, lambda folder: build(repo, folder))
    print(f"wrote {out}: {COUNT} photos, {size / 1e6:.1f} MB of JPEG")


if __name__ == "__main__":
    main()
