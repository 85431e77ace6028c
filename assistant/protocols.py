"""Kept for plugins written against earlier releases: the contracts live in ``assistant.contracts``."""

from assistant.contracts import *  # noqa: F403
