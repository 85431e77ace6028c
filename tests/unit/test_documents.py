"""Reading documents (assistant/knowledge/documents.py): each type with its title, bad paths, folders, chunk sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.knowledge.documents import DocumentError, find_files, read, split


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF whose content stream shows ``text`` (enough for pypdf to extract it)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def test_each_type_is_read_with_its_title(tmp_path: Path) -> None:
    (tmp_path / "shipping.md").write_text("# Shipping and delivery\n\nWe ship to Norway.\n")
    (tmp_path / "stores.html").write_text(
        "<html><head><title>Our stores</title><script>var x = 1;</script></head>"
        "<body><nav>Home | Shop</nav><h1>Stores</h1><p>Berlin is open until 20:00.</p></body></html>"
    )
    (tmp_path / "notes_on-gifts.txt").write_text("Gift cards are valid for 3 years.")
    (tmp_path / "manual.pdf").write_bytes(minimal_pdf("The kettle holds 1.7 litres."))
    docs = {Path(d.source).name: d for d in map(read, find_files([tmp_path]))}
    assert docs["shipping.md"].title == "Shipping and delivery" and docs["shipping.md"].kind == "markdown"
    html = docs["stores.html"]
    assert (html.title, html.kind) == ("Our stores", "html")
    assert "Berlin is open until 20:00." in html.text and "Home | Shop" not in html.text and "var x" not in html.text
    assert docs["notes_on-gifts.txt"].title == "Notes on gifts"
    assert docs["manual.pdf"].kind == "pdf" and "The kettle holds 1.7 litres." in docs["manual.pdf"].text


def test_bad_paths_are_refused_with_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match=r"missing\.md does not exist"):
        find_files([tmp_path / "missing.md"])
    (tmp_path / "sheet.xlsx").write_bytes(b"PK")
    with pytest.raises(DocumentError, match=r"sheet\.xlsx: unsupported type \.xlsx; the knowledge base reads"):
        find_files([tmp_path / "sheet.xlsx"])
    (tmp_path / "empty.md").write_text("   \n")
    with pytest.raises(DocumentError, match=r"empty\.md has no text"):
        read(tmp_path / "empty.md")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DocumentError, match=r"latin1\.txt is not UTF-8 text"):
        read(tmp_path / "latin1.txt")
    (tmp_path / "broken.pdf").write_bytes(b"not a pdf")
    with pytest.raises(DocumentError, match=r"broken\.pdf could not be read as PDF"):
        read(tmp_path / "broken.pdf")


def test_folders_are_read_recursively_without_hidden_or_unsupported_files(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "deep.md").write_text("# Deep\ntext")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "notes.md").write_text("# Hidden\ntext")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    assert [p.name for p in find_files([tmp_path])] == ["deep.md"]


def test_chunks_respect_the_size_and_keep_the_title(tmp_path: Path) -> None:
    paragraphs = [f"Paragraph {i} " + "word " * 30 for i in range(6)]  # about 190 characters each
    (tmp_path / "long.md").write_text("# Long page\n\n" + "\n\n".join(paragraphs))
    chunks = split(read(tmp_path / "long.md"), chunk_chars=400, overlap=0)
    assert 3 <= len(chunks) <= 6 and all(len(c.text) <= 400 for c in chunks)
    assert all(c.title == "Long page" for c in chunks)
    assert chunks[0].for_embedding.startswith("Long page: ")
    joined = " ".join(c.text for c in chunks)
    assert all(p.strip() in joined for p in paragraphs)  # nothing lost at the boundaries
    assert len(split(read(tmp_path / "long.md"), chunk_chars=5000, overlap=0)) == 1
