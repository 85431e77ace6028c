"""Every shim for code written against earlier releases, in one place, each with the reason it stays.

* ``compat.old_plugins``: plugins written before the turn API and the serving state (a channel whose
  ``router()`` takes nothing and uses the ``get_pipeline`` dependency; an NLU or LLM backend built from the
  settings alone; an LLM stream without sampling settings). Third-party plugins are installed separately
  from this repository, so they keep working, with a DeprecationWarning that says what to change.
* ``compat/rasa_path/``: put on the Rasa processes' ``PYTHONPATH`` (not a package of the app). Rasa models
  name their components by class path; models trained while the featurizer lived in ``inside_rasa`` name
  ``inside_rasa.featurizer.SentenceEncoderFeaturizer``, and they stay in the model registry (rollback), so
  that path still loads. (Models trained before that name ``nlu.featurizer.*``, the real path again.)

Deleted, with the reason: ``assistant.protocols`` (a star re-export of ``assistant.contracts``, where the
contracts have lived since the first plugin API; nothing imported it, and keeping a second name for every
contract invites plugins to use the wrong one).
"""
