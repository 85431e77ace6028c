"""knowledge base: documents, chunks with embeddings and keyword indexes, versions; the retrieval of each turn

SQLite: embeddings as float32 bytes (searched in the app with numpy), keywords in an FTS5 table kept in step by
triggers. PostgreSQL: pgvector's ``vector`` with an HNSW index, and a generated ``tsvector`` with a GIN index;
the server needs the pgvector extension (the compose file's image ``pgvector/pgvector`` has it).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from assistant.store.tables import Embedding

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NO_PGVECTOR = (
    "this PostgreSQL server has no pgvector extension, which the knowledge base needs: use the image "
    "pgvector/pgvector (docker-compose.yml does), or install it (Debian/Ubuntu from the PGDG repository: "
    "postgresql-<version>-pgvector), then run `assistant db upgrade` again"
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        available = (
            op.get_bind().exec_driver_sql("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").scalar()
        )
        if not available:
            raise RuntimeError(NO_PGVECTOR)
        op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "kb_documents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source", sa.String(1024), nullable=False, unique=True),
        sa.Column("title", sa.String(512), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("chars", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "kb_chunks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("document_id", sa.Integer(), sa.ForeignKey("kb_documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(512), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("embedding", Embedding(), nullable=False),
        sqlite_autoincrement=True,  # a chunk id is never reused: old turns' citations never point at new text
    )
    op.create_index("ix_kb_chunks_document", "kb_chunks", ["document_id", "position"])
    op.create_table(
        "kb_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.String(32), nullable=False, unique=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("documents", sa.Integer(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("embedder", sa.String(255), nullable=False),
        sa.Column("change", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column("messages", sa.Column("retrieval", sa.JSON(none_as_null=True), nullable=True))
    if postgres:
        op.execute(
            "ALTER TABLE kb_chunks ADD COLUMN tsv tsvector GENERATED ALWAYS AS "
            "(to_tsvector('english', title || ' ' || text)) STORED"
        )
        op.execute("CREATE INDEX ix_kb_chunks_tsv ON kb_chunks USING gin (tsv)")
        op.execute("CREATE INDEX ix_kb_chunks_embedding ON kb_chunks USING hnsw (embedding vector_cosine_ops)")
    else:
        op.execute(
            "CREATE VIRTUAL TABLE kb_chunks_fts USING fts5(title, text, content='kb_chunks', content_rowid='id', "
            "tokenize='porter unicode61')"
        )
        op.execute(
            "CREATE TRIGGER kb_chunks_ai AFTER INSERT ON kb_chunks BEGIN "
            "INSERT INTO kb_chunks_fts(rowid, title, text) VALUES (new.id, new.title, new.text); END"
        )
        op.execute(
            "CREATE TRIGGER kb_chunks_ad AFTER DELETE ON kb_chunks BEGIN "
            "INSERT INTO kb_chunks_fts(kb_chunks_fts, rowid, title, text) "
            "VALUES ('delete', old.id, old.title, old.text); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS kb_chunks_ad")
        op.execute("DROP TRIGGER IF EXISTS kb_chunks_ai")
        op.execute("DROP TABLE IF EXISTS kb_chunks_fts")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("retrieval")
    op.drop_table("kb_versions")
    op.drop_index("ix_kb_chunks_document", "kb_chunks")
    op.drop_table("kb_chunks")
    op.drop_table("kb_documents")
