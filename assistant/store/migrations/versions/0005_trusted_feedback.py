"""trusted feedback: where each feedback row came from and its review; the generation settings of LLM turns

Feedback rows written before this revision cannot be told apart (admin API or web widget), so they are
marked anonymous and pending: none of them is trained on until a reviewer approves it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # add_column only (no batch recreate): SQLite and Postgres both alter in place, rows stay.
    op.add_column("feedback", sa.Column("source", sa.String(16), nullable=False, server_default="anonymous"))
    op.add_column("feedback", sa.Column("channel", sa.String(64), nullable=True))
    op.add_column("feedback", sa.Column("sender_id", sa.String(255), nullable=True))
    op.add_column("feedback", sa.Column("review", sa.String(16), nullable=False, server_default="pending"))
    op.add_column("feedback", sa.Column("reviewed_correction", sa.Text(), nullable=True))
    op.add_column("feedback", sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_feedback_sender", "feedback", ["channel", "sender_id", "created_at"])
    op.create_index("ix_feedback_review", "feedback", ["review"])
    op.add_column("messages", sa.Column("generation", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    op.drop_column("messages", "generation")
    op.drop_index("ix_feedback_review", "feedback")
    op.drop_index("ix_feedback_sender", "feedback")
    for column in ("reviewed_at", "reviewed_correction", "review", "sender_id", "channel", "source"):
        with op.batch_alter_table("feedback") as batch:
            batch.drop_column(column)
