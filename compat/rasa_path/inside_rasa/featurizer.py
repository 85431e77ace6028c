"""Old class path of the featurizer (see the ``compat`` package docstring)."""

from nlu.featurizer import SentenceEncoderFeaturizer

__all__ = ["SentenceEncoderFeaturizer"]
