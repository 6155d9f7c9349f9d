#!/usr/bin/env bash
# Every figure of docs/BENCHMARKS.md in one command: classify-image against the Python original and a fair Python
# variant, on the same weights, images and machine (scripts/bench.py says what is measured and how).
#   bash scripts/bench.sh            full run (about 30 minutes on 2 cores), results written into docs/BENCHMARKS.md
#   bash scripts/bench.sh --quick    ResNet-50 only, few runs: checks the harness (test.sh runs it)
#   bash scripts/bench.sh --memory   memory over long runs: 5,000 images and a 10,000-frame video (a few minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v hyperfine > /dev/null; then
    echo "bench: installing hyperfine" >&2
    apt-get install -y -qq hyperfine > /dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine > /dev/null; }
fi
cargo build --release --quiet
cargo bench --quiet --bench inprocess --no-run
if [[ "${1:-}" == "--memory" ]]; then
    .venv/bin/python scripts/bench_memory.py --out docs/BENCHMARKS.md
elif [[ "${1:-}" == "--quick" ]]; then
    .venv/bin/python scripts/bench.py run --quick
else
    .venv/bin/python scripts/bench.py run --out docs/BENCHMARKS.md
fi
