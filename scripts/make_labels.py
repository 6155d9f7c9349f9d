#!/usr/bin/env python3
"""Rebuild labels/ilsvrc2012_wordnet_lemmas.txt exactly from two Debian packages.

The ImageNet-1k class order is the sorted order of the 1000 WordNet ids; each line is that synset's lemmas.
Usage: scripts/make_labels.py [OUT]   (downloads `darknet` and `wordnet-base` with apt-get into a temp dir)
"""
import hashlib
import pathlib
import subprocess
import sys
import tempfile

EXPECTED_SHA256 = "9e3220c7216f4c718ccc8dd7ae20224470b854df666acccddf206781cc3fc34c"


def extract(debs: list[str], into: pathlib.Path) -> None:
    subprocess.run(["apt-get", "download", *debs], cwd=into, check=True, stdout=subprocess.DEVNULL)
    for deb in into.glob("*.deb"):
        subprocess.run(["dpkg", "-x", str(deb), str(into / "root")], check=True)


def build(root: pathlib.Path) -> bytes:
    wnids = (root / "usr/share/darknet/data/imagenet.labels.list").read_text().split("\n")[:1000]
    wnids = sorted(w.strip() for w in wnids)
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
    return "".join(lemmas[w] + "\n" for w in wnids).encode()


def main() -> None:
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else
                       pathlib.Path(__file__).resolve().parent.parent / "labels/ilsvrc2012_wordnet_lemmas.txt")
    with tempfile.TemporaryDirectory() as tmp:
        extract(["darknet", "wordnet-base"], pathlib.Path(tmp))
        data = build(pathlib.Path(tmp) / "root")
    digest = hashlib.sha256(data).hexdigest()
    if digest != EXPECTED_SHA256:
        sys.exit(f"make_labels: built file has sha256 {digest}, expected {EXPECTED_SHA256}")
    out.write_bytes(data)
    print(f"wrote {out} ({len(data)} bytes, sha256 {digest})")


if __name__ == "__main__":
    main()
