#!/usr/bin/env bash
# Fuzzes the .pth reader (crates/safe-pth) and the image path (decode + preparation) with cargo-fuzz
# (libFuzzer), SECONDS each (default 600), then merges what added coverage into fuzz/corpus/, which
# tests/fuzz_corpus.rs replays. A crash stops the run and leaves its input in fuzz/artifacts/.
#   bash scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# cargo-fuzz passes nightly flags; the stable toolchain accepts them with this switch (and ships libFuzzer's
# sanitizer runtimes).
export RUSTC_BOOTSTRAP=1
# The fuzz binaries are not linked with classify-image's rpath.
export LD_LIBRARY_PATH="$PWD/.libtorch/lib"
cd fuzz
for target in pth image; do
  mkdir -p "runs/$target"
  cargo fuzz run -s none -O "$target" "runs/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 2>&1 | grep -v -E "^(imdecode_|Corrupt JPEG|libpng|Warning: unknown JFIF)" | tail -n 20
  cargo fuzz run -s none -O "$target" "corpus/$target" "runs/$target" -- -merge=1 2>&1 | tail -n 2
  rm -rf "runs/$target"
done
