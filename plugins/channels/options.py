"""Typed options for channel plugins, read from ``settings.channel_options(name)`` (credentials file +
``ASSISTANT_CHANNEL__<NAME>__<OPTION>``), with one clear sentence when something is missing."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from assistant.config import Settings, validation_problems
from assistant.contracts import AssistantError

M = TypeVar("M", bound=BaseModel)


class ChannelConfigError(AssistantError, ValueError):
    pass


def channel_options(settings: Settings, name: str, model: type[M]) -> M:
    try:
        return model.model_validate(settings.channel_options(name))
    except ValidationError as exc:
        problems = validation_problems(exc, "options")
        raise ChannelConfigError(
            f"the {name} channel is enabled but its options are wrong ({problems}); set them under "
            f"'{name}:' in {settings.credentials_path} or as ASSISTANT_CHANNEL__{name.upper()}__<OPTION>"
        ) from None
