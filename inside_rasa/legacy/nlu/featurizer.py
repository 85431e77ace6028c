"""Old class path of the featurizer (see the package docstring)."""

from inside_rasa.featurizer import SentenceEncoderFeaturizer

__all__ = ["SentenceEncoderFeaturizer"]
