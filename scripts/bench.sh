#!/usr/bin/env bash
# Every figure of docs/BENCHMARKS.md in one command: classify-image against the Python original and a fair Python
# variant, on the same weights, images and machine (scripts/bench.py says what is measured and how).
#   bash scripts/bench.sh            full run (about 30 minutes on 2 cores, then the peers), results written into
#                                    docs/BENCHMARKS.md
#   bash scripts/bench.sh --quick    ResNet-50 only, few runs: checks the harness (test.sh runs it)
#   bash scripts/bench.sh --peers    only the CPU peers: PyTorch eager and TorchScript, ONNX Runtime, OpenVINO in
#                                    fp32, bf16 and int8, and the video frame rate (about 30 minutes on 2 cores)
#   bash scripts/bench.sh --memory   memory over long runs: 5,000 images and a 10,000-frame video (a few minutes)
#   bash scripts/bench.sh --zoo      one member of each family of the zoo beside PyTorch eager, batch 1 (about
#                                    11 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v hyperfine > /dev/null; then
    echo "bench: installing hyperfine" >&2
    apt-get install -y -qq hyperfine > /dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine > /dev/null; }
fi
# The peers' packages (ONNX Runtime, OpenVINO, onnx) go into .venv for the runs that measure them, and only then;
# like setup.sh, the requirements file's hash in .venv says they are there.
bench_requirements() {
    local want
    want=$(sha256sum scripts/requirements-bench.txt | cut -d' ' -f1)
    if [ "$(cat .venv/.requirements-bench.sha256 2>/dev/null)" != "$want" ]; then
        echo "bench: installing the peers' Python packages (scripts/requirements-bench.txt)" >&2
        .venv/bin/python -m pip install -q --disable-pip-version-check -r scripts/requirements-bench.txt
        echo "$want" > .venv/.requirements-bench.sha256
    fi
}
cargo build --release --quiet
cargo bench --quiet --bench inprocess --no-run
if [[ "${1:-}" == "--memory" ]]; then
    .venv/bin/python scripts/bench_memory.py --out docs/BENCHMARKS.md
elif [[ "${1:-}" == "--quick" ]]; then
    .venv/bin/python scripts/bench.py run --quick
elif [[ "${1:-}" == "--zoo" ]]; then
    .venv/bin/python scripts/bench.py zoo --out docs/BENCHMARKS.md
elif [[ "${1:-}" == "--peers" ]]; then
    bench_requirements
    .venv/bin/python scripts/bench.py peers --out docs/BENCHMARKS.md
else
    bench_requirements
    .venv/bin/python scripts/bench.py run --out docs/BENCHMARKS.md
    .venv/bin/python scripts/bench.py peers --out docs/BENCHMARKS.md
    .venv/bin/python scripts/bench.py zoo --out docs/BENCHMARKS.md
fi
