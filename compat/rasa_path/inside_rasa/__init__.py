"""The featurizer's class path while it lived in ``inside_rasa`` (see ``compat``): models trained then load."""
