#!/usr/bin/env bash
# The whole test suite, set-up included: lints, unit tests of every crate of the workspace (safe-pth too), the
# integration tests (one binary, tests/it: parity with PyTorch, the CLI against the Python original, the window
# under Xvfb, bad input, ...), the library example, the `cuda` feature's link, and the benchmark harness.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
step() { printf '[test] %s (%ds)\n' "$1" "$SECONDS" >&2; }
# What clippy and the builds need (the toolchain, libtorch) first. The test suite's own Python packages (on a
# fresh clone 2.5 GB to unpack, one core's work) install in the background while clippy runs; then, in the same
# background job, one Python process makes the calibrated weights fixtures (minutes of one core on a fresh clone,
# seconds to check when they exist). A test that needs a fixture being made waits for it (a lock per fixture);
# one that process has not reached, the test makes itself.
bash scripts/setup.sh --main
mkdir -p target/fixtures
rm -f target/setup.status
(
  status=0
  bash scripts/setup.sh || status=$?
  echo "$status" > target/setup.status
  [ "$status" -eq 0 ] || exit "$status"
  OMP_NUM_THREADS=1 exec .venv/bin/python scripts/reference.py fixtures --root target/fixtures \
    > target/fixtures.log 2>&1
) &
background=$!
trap 'kill "$background" 2>/dev/null || true' EXIT
# Waits until the background job's set-up has passed: what it installs (torch's CUDA libraries among them) is
# there once it returns.
wait_for_setup() {
  while [ ! -s target/setup.status ]; do
    if ! kill -0 "$background" 2>/dev/null && [ ! -s target/setup.status ]; then
      echo "test.sh: the test suite's set-up (scripts/setup.sh) ended without a status" >&2
      exit 1
    fi
    sleep 0.5
  done
  [ "$(cat target/setup.status)" = 0 ] || { echo "test.sh: scripts/setup.sh failed (see above)" >&2; exit 1; }
}
step "clippy"
cargo clippy --workspace --release --all-targets --quiet -- -D warnings
step "the cuda feature"
# The `cuda` feature links libtorch's CUDA side into classify-image: its hooks must then be registered
# (tests/it/devices.rs checks the build without the feature). What decides it is how the binary links and what
# `devices` reports: build.rs, the manifests, src/main.rs and the libtorch linked against. The check runs when
# one of them has changed since it last passed (a fresh clone always runs it). Building with the feature
# recompiles our whole crate, and the build without it recompiles it again: this one comes first, while the
# background job above still has a core's work, and the build for the tests after it, so that the next run
# finds the build without the feature up to date.
link=$( (cat build.rs Cargo.toml Cargo.lock .cargo/config.toml src/main.rs; ls -lL "$(readlink -f .libtorch)/lib") |
  sha256sum | cut -d' ' -f1)
if [ "$(cat target/cuda-feature.passed 2>/dev/null)" = "$link" ]; then
  echo "cuda feature: checked already for this build.rs, manifest, src/main.rs and libtorch (target/cuda-feature.passed)"
else
  cargo build --release --quiet --features cuda
  # The binary built with the feature loads cuDNN, cuBLAS, ..., which the test suite's set-up installs.
  wait_for_setup
  devices=$(./target/release/classify-image devices) ||
    { echo "test.sh: classify-image built with --features cuda does not start (see above)" >&2; exit 1; }
  grep -q "cuda hooks registered: yes" <<< "$devices" ||
    { echo "test.sh: built with --features cuda, classify-image reports no CUDA hooks: $devices" >&2; exit 1; }
  echo "$link" > target/cuda-feature.passed
  echo "cuda feature: classify-image built with --features cuda has libtorch's CUDA hooks registered"
fi
# The test suite's set-up must have passed before the tests run (its fixtures may still be under way).
wait_for_setup
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
step "done"
