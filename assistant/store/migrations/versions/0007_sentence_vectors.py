"""knowledge base: each chunk's sentence vectors (float32 bytes, one row per sentence), for answerability

Whether a passage answers a question shows better with its best sentence than with the passage alone (on the
ClapNQ tuning part the two together separate answerable from unanswerable questions with an AUC of 0.89, the
passage's cosine alone 0.86). Chunks indexed before this revision get their sentence
vectors at the next `assistant kb add` / `reindex` (and `assistant up`, which adds the bot's documents).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # a plain ADD COLUMN on both databases: SQLite's table is not copied, so its FTS5 triggers stay
    op.add_column("kb_chunks", sa.Column("sentence_embeddings", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.drop_column("kb_chunks", "sentence_embeddings")
