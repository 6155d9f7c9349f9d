#!/usr/bin/env python3
"""Build evalset/: ImageNet-labelled photos for `classify-image eval`, from ajschumacher/imagen.

Usage: scripts/make_evalset.py IMAGEN_REPO [OUT_DIR]
  IMAGEN_REPO  a clone of github.com/ajschumacher/imagen, bare or not (read through git, at SOURCE_COMMIT)
  OUT_DIR      default evalset/ at the repository root; replaced as a whole

imagen holds 1,000 ImageNet photos, five in each of 200 categories of the ILSVRC detection challenge, each file
named WNID_NUMBER_NAME.jpg. The photos whose WNID is one of the 1000 classification classes (750, in 150
classes) are kept: decoded as cv2.imread does, resized so that the shorter side is 256 (aspect ratio kept,
cv2.INTER_AREA), and written as JPEG quality 90 to OUT_DIR/WNID/WNID_NUMBER.jpg. The class index is the WNID's
line in labels/imagenet_wnids.txt (scripts/make_labels.py), checked against labels/ilsvrc2012_wordnet_lemmas.txt:
the name in each file name must share a word with its class's lemmas (one known synonym pair aside).
OUT_DIR/manifest.csv lists path,wnid,class_index,sha256,original; OUT_DIR/README.md says where the photos come
from. The JPEG bytes depend on the OpenCV build (its libjpeg); the README records its version.
"""
import csv
import hashlib
import io
import pathlib
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np

SOURCE = "https://github.com/ajschumacher/imagen"
SOURCE_COMMIT = "2e8718956e3bb046db9a8e488c2254fd9846b6c5"
SHORT_SIDE = 256
JPEG_QUALITY = 90
# File-name words that share nothing with their class's WordNet lemmas, yet name the same thing.
SYNONYMS = {"n02870880": ("bookshelf", "bookcase")}

ROOT = pathlib.Path(__file__).resolve().parent.parent


def git(repo, *args, **kw):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, **kw).stdout


def source_files(repo):
    """(file name, bytes) of every photo under imagen/ at SOURCE_COMMIT, sorted by name."""
    names = git(repo, "ls-tree", "--name-only", SOURCE_COMMIT, "imagen/", text=True).split()
    batch = subprocess.run(["git", "-C", str(repo), "cat-file", "--batch"], check=True, capture_output=True,
                           input="".join(f"{SOURCE_COMMIT}:{n}\n" for n in names).encode()).stdout
    stream, files = io.BytesIO(batch), []
    for name in names:
        header = stream.readline().split()
        if header[1] != b"blob":
            sys.exit(f"make_evalset: {name} is not a file at {SOURCE_COMMIT}")
        files.append((name.split("/", 1)[1], stream.read(int(header[2]))))
        stream.read(1)
    return sorted(files)


def class_indices():
    wnids = (ROOT / "labels/imagenet_wnids.txt").read_text().split()
    lemmas = (ROOT / "labels/ilsvrc2012_wordnet_lemmas.txt").read_text().splitlines()
    if len(wnids) != 1000 or wnids != sorted(set(wnids)) or len(lemmas) != 1000:
        sys.exit("make_evalset: labels/imagenet_wnids.txt must hold 1000 sorted distinct wnids, one per lemmas line")
    return {w: i for i, w in enumerate(wnids)}, lemmas


def words(text):
    return set(re.split(r"[^a-z0-9]+", text.lower())) - {"", "a", "of", "or", "with"}


def check_name(wnid, name, lemma_line):
    """The file name's label must name the class its wnid gives."""
    if wnid in SYNONYMS and SYNONYMS[wnid][0] == name:
        return
    if not words(name) & words(lemma_line):
        sys.exit(f"make_evalset: {wnid} is named '{name}' in the source but its class is '{lemma_line}'")


def resized(image):
    h, w = image.shape[:2]
    if h <= w:
        size = (max(1, round(w * SHORT_SIDE / h)), SHORT_SIDE)
    else:
        size = (SHORT_SIDE, max(1, round(h * SHORT_SIDE / w)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def build(repo, out):
    index, lemmas = class_indices()
    rows, skipped = [], 0
    for original, data in source_files(repo):
        m = re.fullmatch(r"(n\d{8})_(\d+)_(.+)\.jpg", original)
        if not m:
            sys.exit(f"make_evalset: unexpected file name {original}")
        wnid, number, name = m.groups()
        if wnid not in index:
            skipped += 1
            continue
        check_name(wnid, name, lemmas[index[wnid]])
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            sys.exit(f"make_evalset: OpenCV cannot decode {original}")
        ok, jpeg = cv2.imencode(".jpg", resized(image), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            sys.exit(f"make_evalset: OpenCV cannot encode {original}")
        path = f"{wnid}/{wnid}_{number}.jpg"
        (out / wnid).mkdir(exist_ok=True)
        (out / path).write_bytes(jpeg.tobytes())
        rows.append([path, wnid, index[wnid], hashlib.sha256(jpeg.tobytes()).hexdigest(), original])
    rows.sort()
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["path", "wnid", "class_index", "sha256", "original"])
        writer.writerows(rows)
    classes = len({r[1] for r in rows})
    size = sum((out / r[0]).stat().st_size for r in rows)
    (out / "README.md").write_text(readme(repo, len(rows), classes, skipped, size))
    return len(rows), classes, skipped, size


def readme(repo, count, classes, skipped, size):
    source_readme = git(repo, "show", f"{SOURCE_COMMIT}:README.md", text=True).strip()
    files = git(repo, "ls-tree", "--name-only", SOURCE_COMMIT, text=True).split()
    quoted = "\n".join("> " + line if line else ">" for line in source_readme.splitlines())
    return f"""# evalset: {count} ImageNet-labelled photos

A small, committed evaluation set for `classify-image eval evalset` (and `classify-image eval
evalset/manifest.csv`): {count} photos in {classes} of the 1000 ImageNet-1k classes, in ImageNet's folder layout,
one subfolder per class named by its WordNet id.

## Where the photos come from

{SOURCE}, commit `{SOURCE_COMMIT}`: 1,000 photos sampled from ImageNet, five in each of the 200 categories of
the ILSVRC detection challenge, each file named by its ImageNet id (which starts with the WordNet id) and an
English name. The {count} whose WordNet id is one of the 1000 classification classes are here; the other
{skipped} (classes such as `person`, which ImageNet-1k does not have) are not.

`scripts/make_evalset.py` rebuilt this folder: each photo decoded by OpenCV ({cv2.__version__}, as
`cv2.imread` does), resized so that its shorter side is {SHORT_SIDE} pixels (aspect ratio kept, `INTER_AREA`),
and written as JPEG quality {JPEG_QUALITY}; {size / 1e6:.1f} MB in all. The class index is the WordNet id's
position in the sorted list of the 1000 ids (`labels/imagenet_wnids.txt`, built with
`labels/ilsvrc2012_wordnet_lemmas.txt` by `scripts/make_labels.py`).

`manifest.csv` has one row per photo: `path` (relative to this folder), `wnid`, `class_index`, `sha256` (of
the file here) and `original` (its file name in the source).

The file names are ImageNet's `WNID_NUMBER` ids, the naming of ImageNet's training images, not of the
ILSVRC2012 validation images (`ILSVRC2012_val_NNNNNNNN`): these photos may well be in the training split of the
models' ImageNet-1k training set. An accuracy measured here compares precisions, preparations and
implementations of one network; it is not an estimate of the network's ImageNet accuracy.

## Licence

The source repository has no licence file (its files at that commit: {", ".join(f"`{f}`" for f in files)}).
Its README says, in full:

{quoted}

So it grants no licence: it states none and makes no copyright claims. The photos were collected by ImageNet
from the web; their copyright stays with their owners, and image-net.org makes ImageNet available to
researchers under its own terms of access. This folder adds no claim of its own either.
"""


def replace_folder(out, build):
    """`build(folder)` into a new folder beside `out`, then moved into its place: a failed build leaves `out` as
    it was. Returns what `build` returned."""
    tmp = out.parent / f".{out.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        result = build(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return result


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    repo = pathlib.Path(sys.argv[1])
    out = pathlib.Path(sys.argv[2]) if len(sys.argv) == 3 else ROOT / "evalset"
    count, classes, skipped, size = replace_folder(out, lambda folder: build(repo, folder))
    print(f"wrote {out}: {count} photos in {classes} classes, {size / 1e6:.1f} MB of JPEG ({skipped} photos of "
          f"classes outside ImageNet-1k left out)")


if __name__ == "__main__":
    main()
