"""The LLM's prompt (assistant/replies/writer.py): the history trimmed by tokens, oldest first."""

from __future__ import annotations

from pathlib import Path

from assistant.config import Settings
from assistant.contracts import ChatMessage
from assistant.domain import Domain
from assistant.replies.writer import ReplyWriter
from tests.unit.fakes import FakeLLM


class CountingLLM(FakeLLM):
    """Counts a prompt's tokens as its characters (as a served tokenizer would, in its own units)."""

    async def count_tokens(self, messages: list[ChatMessage], model: str) -> int | None:
        return sum(len(m.content) for m in messages)


async def test_history_is_trimmed_to_the_context_oldest_first(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    domain = Domain.load(settings.bot_dir)
    settings.llm.context_tokens = settings.llm.max_tokens + len(domain.persona) + len("hello") + 450
    writer = ReplyWriter(settings, CountingLLM(settings, None), domain)  # type: ignore[arg-type]
    history = [("user" if i % 2 == 0 else "bot", f"{i:02d}" + "x" * 98) for i in range(10)]  # 100 chars each
    prompt = await writer.prompt(history, "hello", "base")
    assert prompt.history_kept == 4 and prompt.history_dropped == 6  # two exchanges fit in 450
    assert prompt.messages[1].content.startswith(f"{10 - prompt.history_kept:02d}")  # the newest were kept
    assert prompt.messages[-1] == ChatMessage("user", "hello") and prompt.tokens is not None
