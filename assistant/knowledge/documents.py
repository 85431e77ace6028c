"""Documents for the knowledge base: read (Markdown, HTML, plain text, PDF) and split into chunks.

Splitting is LangChain's ``RecursiveCharacterTextSplitter`` (paragraphs, then lines, then sentences, then
words), with the sizes in ``kb.chunk_chars`` / ``kb.chunk_overlap``. Each chunk keeps its document's title,
which is also embedded and searched with it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from assistant.contracts import AssistantError

KINDS = {".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html", ".txt": "text", ".pdf": "pdf"}
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


class DocumentError(AssistantError, ValueError):
    pass


@dataclass(frozen=True)
class Document:
    source: str  # the resolved path
    title: str
    kind: str
    text: str

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(f"{self.title}\n{self.text}".encode()).hexdigest()


@dataclass(frozen=True)
class Chunk:
    title: str
    text: str

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(f"{self.title}\n{self.text}".encode()).hexdigest()

    @property
    def for_embedding(self) -> str:
        return f"{self.title}: {self.text}"


def find_files(paths: Iterable[Path]) -> list[Path]:
    """The supported files among ``paths`` (folders recursively, hidden files skipped), sorted.

    A path that does not exist or a file of an unsupported type is an error (named in the sentence)."""
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            raise DocumentError(f"{path} does not exist")
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in KINDS and not any(part.startswith(".") for part in p.parts)
            )  # fmt: skip
        elif path.suffix.lower() in KINDS:
            found.append(path)
        else:
            raise DocumentError(
                f"{path}: unsupported type {path.suffix or '(none)'}; the knowledge base reads "
                f"{', '.join(sorted(KINDS))}"
            )
    return sorted({p.resolve() for p in found})


def read(path: Path) -> Document:
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        raise DocumentError(f"{path}: unsupported type {path.suffix or '(none)'}")
    title = path.stem.replace("-", " ").replace("_", " ").strip().capitalize()
    if kind == "pdf":
        text, title = _pdf(path, title)
    else:
        try:
            raw = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DocumentError(f"{path} is not UTF-8 text ({exc.reason})") from exc
        if kind == "html":
            text, title = _html(raw, title)
        elif kind == "markdown":
            heading = HEADING.search(raw)  # the first heading is the title (and not repeated in every chunk)
            text, title = (raw[: heading.start()] + raw[heading.end() :], heading.group(1)) if heading else (raw, title)
        else:
            text = raw
    text = re.sub(r"[ \t]+", " ", text).strip()
    if not text:
        raise DocumentError(f"{path} has no text")
    return Document(source=str(path.resolve()), title=title[:500], kind=kind, text=text)


def _html(raw: str, title: str) -> tuple[str, str]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(raw, "html.parser")
    for tag in soup(["script", "style", "nav", "footer", "header", "noscript"]):
        tag.decompose()
    heading = soup.title or soup.find("h1")
    if heading and heading.get_text(strip=True):
        title = heading.get_text(strip=True)
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return "\n".join(line for line in lines if line), title


def _pdf(path: Path, title: str) -> tuple[str, str]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        text = "\n\n".join(page.extract_text() or "" for page in reader.pages)
    except (PdfReadError, ValueError, OSError) as exc:
        raise DocumentError(f"{path} could not be read as PDF: {exc}") from exc
    meta_title = (reader.metadata.title if reader.metadata else None) or ""
    return text, meta_title.strip() or title


def split(document: Document, chunk_chars: int, overlap: int) -> list[Chunk]:
    from langchain_text_splitters import MarkdownTextSplitter, RecursiveCharacterTextSplitter

    splitter_class = MarkdownTextSplitter if document.kind == "markdown" else RecursiveCharacterTextSplitter
    splitter = splitter_class(chunk_size=chunk_chars, chunk_overlap=min(overlap, chunk_chars // 2))
    pieces = [piece.strip() for piece in splitter.split_text(document.text)]
    return [Chunk(title=document.title, text=piece) for piece in pieces if piece]
