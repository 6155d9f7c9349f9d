#!/usr/bin/env python3
"""Rebuild labels/ilsvrc2012_wordnet_lemmas.txt and labels/imagenet_wnids.txt exactly from two Debian packages.

The ImageNet-1k class order is the sorted order of the 1000 WordNet ids, the first 1000 lines of darknet's
imagenet.labels.list. imagenet_wnids.txt is that sorted list, one id per line: class i is line i. Each line of
ilsvrc2012_wordnet_lemmas.txt is the same synset's lemmas from WordNet 3.0, so the two files agree line for line
by construction, and each file's SHA-256 is checked against the committed one.
Usage: scripts/make_labels.py [OUT_DIR]   (default labels/; downloads `darknet` and `wordnet-base` with apt-get
into a temp dir)
"""
import hashlib
import pathlib
import subprocess
import sys
import tempfile

EXPECTED_SHA256 = {
    "ilsvrc2012_wordnet_lemmas.txt": "9e3220c7216f4c718ccc8dd7ae20224470b854df666acccddf206781cc3fc34c",
    "imagenet_wnids.txt": "70002b0ff5de60a3a17a82dbfcff291931f96225ddf941ad2e182fc39e183d15",
}


def extract(debs: list[str], into: pathlib.Path) -> None:
    subprocess.run(["apt-get", "download", *debs], cwd=into, check=True, stdout=subprocess.DEVNULL)
    for deb in into.glob("*.deb"):
        subprocess.run(["dpkg", "-x", str(deb), str(into / "root")], check=True)


def build(root: pathlib.Path) -> dict[str, bytes]:
    wnids = (root / "usr/share/darknet/data/imagenet.labels.list").read_text().split("\n")[:1000]
    wnids = sorted(w.strip() for w in wnids)
    if len(set(wnids)) != 1000:
        sys.exit(f"make_labels: {len(set(wnids))} distinct wnids in the first 1000 lines, expected 1000")
    offsets = {w[1:]: w for w in wnids}
    lemmas = {}
    with open(root / "usr/share/wordnet/data.noun", encoding="latin-1") as f:
        for line in f:
            fields = line.split(" ")
            if fields[0] in offsets:
                count = int(fields[3], 16)
                lemmas[offsets[fields[0]]] = ", ".join(fields[4 + 2 * i] for i in range(count))
    missing = [w for w in wnids if w not in lemmas]
    if missing:
        sys.exit(f"make_labels: {len(missing)} wnids not found in data.noun, e.g. {missing[0]}")
    return {
        "ilsvrc2012_wordnet_lemmas.txt": "".join(lemmas[w] + "\n" for w in wnids).encode(),
        "imagenet_wnids.txt": "".join(w + "\n" for w in wnids).encode(),
    }


def main() -> None:
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent / "labels")
    with tempfile.TemporaryDirectory() as tmp:
        extract(["darknet", "wordnet-base"], pathlib.Path(tmp))
        files = build(pathlib.Path(tmp) / "root")
    for name, data in files.items():
        digest = hashlib.sha256(data).hexdigest()
        if digest != EXPECTED_SHA256[name]:
            sys.exit(f"make_labels: built {name} has sha256 {digest}, expected {EXPECTED_SHA256[name]}")
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
        print(f"wrote {out / name} ({len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()})")


if __name__ == "__main__":
    main()
