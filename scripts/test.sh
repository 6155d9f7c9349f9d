#!/usr/bin/env bash
# The whole test suite, set-up included: lints, unit tests, parity with PyTorch, the CLI against the Python
# original, the window under Xvfb, bad input.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo clippy --release --all-targets --quiet -- -D warnings
cargo test --release --no-fail-fast
# The library used from a program (examples/classify.rs) classifies for real.
example=$(cargo run --release --quiet --example classify -- images/coffee.png)
echo "$example"
grep -q "coffee.png: espresso" <<< "$example"
# The `cuda` feature links libtorch's CUDA side into classify-image: its hooks must then be registered
# (tests/devices.rs checks the build without the feature). Built last: only our crate recompiles.
cargo build --release --quiet --features cuda
devices=$(./target/release/classify-image devices)
grep -q "cuda hooks registered: yes" <<< "$devices"
echo "cuda feature: classify-image built with --features cuda has libtorch's CUDA hooks registered"
# The benchmark harness (BENCHMARKS.md) runs end to end in its quick form: ResNet-50, few runs, 4 images. It
# checks that every measurement still works, not the speed (that is for `bash scripts/bench.sh`).
bash scripts/bench.sh --quick > /dev/null
echo "bench: the harness ran (bash scripts/bench.sh --quick)"
