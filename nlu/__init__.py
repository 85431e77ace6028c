"""Code that runs inside the Rasa environment (Rasa 3.6, TensorFlow, pydantic 1): the sentence-encoder
featurizer, its encoder and fine-tuning. It imports nothing from the app (`make test` checks this), and the
app never imports it: Rasa loads it by class path from a bot's ``config.yml``."""
