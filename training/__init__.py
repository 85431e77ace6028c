"""Retraining from the log: export labelled data, fine-tune the NLU model (real Rasa) and a LoRA adapter
(peft, in the vLLM environment), evaluate against what is served, promote only what is better, and
hot-swap it into the running servers. `assistant retrain` runs it all (see ``training.retrain``)."""
