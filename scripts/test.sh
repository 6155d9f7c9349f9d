#!/usr/bin/env bash
# The whole test suite, set-up included: lints, unit tests of every crate of the workspace (safe-pth too), the
# integration tests (one binary, tests/it: parity with PyTorch, the CLI against the Python original, the window
# under Xvfb, bad input, ...), the library example, the `cuda` feature's link, and the benchmark harness.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
step() { printf '[test] %s (%ds)\n' "$1" "$SECONDS" >&2; }
# The calibrated weights fixtures take minutes to make on a fresh clone (seconds to check when they exist): one
# Python process makes them in the background while clippy and the build leave a core idle. A test that needs
# one it is making waits for it (a lock per fixture); one it has not reached, the test makes itself.
mkdir -p target/fixtures
OMP_NUM_THREADS=1 .venv/bin/python scripts/reference.py fixtures --root target/fixtures > target/fixtures.log 2>&1 &
fixtures=$!
trap 'kill $fixtures 2>/dev/null || true' EXIT
step "clippy"
cargo clippy --workspace --release --all-targets --quiet -- -D warnings
step "cargo test"
# Two tests run at a time, each mostly waiting on a classify-image or Python process: with one OpenMP thread
# each they share the two cores instead of oversubscribing them (measured: 89 s instead of 118 s warm).
OMP_NUM_THREADS=1 cargo test --workspace --release --no-fail-fast
step "the library example"
# The library used from a program (examples/classify.rs) classifies for real.
example=$(cargo run --release --quiet --example classify -- images/coffee.png)
echo "$example"
grep -q "coffee.png: espresso" <<< "$example"
step "the benchmark harness"
# The benchmark harness (docs/BENCHMARKS.md) runs end to end in its quick form: ResNet-50, one run of each
# measurement, a folder of 1 image. It checks that every measurement still works, not the speed (that is for
# `bash scripts/bench.sh`).
bash scripts/bench.sh --quick > /dev/null
echo "bench: the harness ran (bash scripts/bench.sh --quick)"
step "the cuda feature"
# The `cuda` feature links libtorch's CUDA side into classify-image: its hooks must then be registered
# (tests/it/devices.rs checks the build without the feature). What decides it is how the binary links and what
# `devices` reports: build.rs, the manifests, src/main.rs and the libtorch linked against. The check runs when
# one of them has changed since it last passed (a fresh clone always runs it): building with the feature
# recompiles our whole crate, and the next run's build recompiled it again without. Built last.
link=$( (cat build.rs Cargo.toml Cargo.lock .cargo/config.toml src/main.rs; ls -lL "$(readlink -f .libtorch)/lib") |
  sha256sum | cut -d' ' -f1)
if [ "$(cat target/cuda-feature.passed 2>/dev/null)" = "$link" ]; then
  echo "cuda feature: checked already for this build.rs, manifest, src/main.rs and libtorch (target/cuda-feature.passed)"
else
  cargo build --release --quiet --features cuda
  devices=$(./target/release/classify-image devices)
  grep -q "cuda hooks registered: yes" <<< "$devices"
  echo "$link" > target/cuda-feature.passed
  echo "cuda feature: classify-image built with --features cuda has libtorch's CUDA hooks registered"
fi
step "done"
