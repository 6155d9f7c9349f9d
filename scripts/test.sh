#!/usr/bin/env bash
# The whole test suite, set-up included: lints, unit tests, parity with PyTorch, the CLI against the Python
# original, the window under Xvfb, bad input.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo clippy --release --all-targets --quiet -- -D warnings
cargo test --release
