"""messages.llm_model -> messages.answered_by: it names the template, action or LLM model that wrote a reply

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 14:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain rename (SQLite >= 3.25 and Postgres): rows, indexes and constraints stay as they are.
    op.execute("ALTER TABLE messages RENAME COLUMN llm_model TO answered_by")


def downgrade() -> None:
    op.execute("ALTER TABLE messages RENAME COLUMN answered_by TO llm_model")
