"""The model registry: plain functions of a ``Connection``, run with ``Store.transaction``.

Versions are named per kind (``nlu-0003``, ``llm-0002``); at most one per kind is ``active``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from assistant.contracts import AssistantError, ModelKind, ModelStatus
from assistant.store.tables import ModelVersion, utcnow

KINDS = tuple(ModelKind)
TRAINING, CANDIDATE, ACTIVE, REJECTED, RETIRED, FAILED = (
    ModelStatus.TRAINING, ModelStatus.CANDIDATE, ModelStatus.ACTIVE, ModelStatus.REJECTED, ModelStatus.RETIRED,
    ModelStatus.FAILED,
)  # fmt: skip
versions = ModelVersion.__table__


class UnknownVersion(AssistantError, LookupError):
    pass


@dataclass(frozen=True)
class ModelRecord:
    kind: ModelKind
    version: str
    parent: str | None
    path: str | None
    data_hash: str | None
    config_hash: str | None
    metrics: dict[str, Any] | None
    status: ModelStatus
    report: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    activated_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> ModelRecord:
        values = {name: getattr(row, name) for name in cls.__dataclass_fields__}
        return cls(**{**values, "kind": ModelKind(values["kind"]), "status": ModelStatus(values["status"])})


def _select() -> Any:
    return select(*(versions.c[name] for name in ModelRecord.__dataclass_fields__))


def register(conn: Connection, kind: str, status: str = TRAINING, **fields: Any) -> ModelRecord:
    """Add the next version of ``kind`` (``nlu-0001``, ``nlu-0002``, ...)."""
    count = conn.scalar(select(func.count()).select_from(versions).where(versions.c.kind == kind)) or 0
    version = f"{kind}-{count + 1:04d}"
    now = utcnow()
    conn.execute(
        insert(versions).values(kind=kind, version=version, status=status, created_at=now, updated_at=now, **fields)
    )
    return get(conn, version)


def get(conn: Connection, version: str) -> ModelRecord:
    row = conn.execute(_select().where(versions.c.version == version)).first()
    if row is None:
        raise UnknownVersion(f"no model version {version!r}; `assistant models list` shows them")
    return ModelRecord.from_row(row)


def update_version(conn: Connection, version: str, **fields: Any) -> None:
    conn.execute(update(versions).where(versions.c.version == version).values(updated_at=utcnow(), **fields))


def active(conn: Connection, kind: str) -> ModelRecord | None:
    row = conn.execute(_select().where(versions.c.kind == kind, versions.c.status == ACTIVE)).first()
    return ModelRecord.from_row(row) if row else None


def all_versions(conn: Connection, kind: str | None = None) -> list[ModelRecord]:
    query = _select().order_by(versions.c.kind, versions.c.id)
    if kind:
        query = query.where(versions.c.kind == kind)
    return [ModelRecord.from_row(row) for row in conn.execute(query)]


def activate(conn: Connection, version: str) -> ModelRecord | None:
    """Make ``version`` the active one of its kind; the one it replaces is retired (and returned)."""
    target = get(conn, version)
    previous = active(conn, target.kind)
    if previous and previous.version != version:
        update_version(conn, previous.version, status=RETIRED)
    update_version(conn, version, status=ACTIVE, activated_at=utcnow())
    return previous


def deactivate(conn: Connection, kind: str) -> ModelRecord | None:
    """Serve no version of ``kind`` (for the LLM: the base model without an adapter)."""
    previous = active(conn, kind)
    if previous:
        update_version(conn, previous.version, status=RETIRED)
    return previous


def rollback_target(conn: Connection, kind: str) -> tuple[ModelRecord | None, ModelRecord | None]:
    """(current, what ``models rollback`` returns to): the current version's parent, the version that was
    active when it was trained (None: nothing, which for the LLM means the base model)."""
    current = active(conn, kind)
    if current is None or current.parent is None:
        return current, None
    return current, get(conn, current.parent)


def fail_unfinished(conn: Connection) -> list[str]:
    """Versions left in ``training`` by a retrain that died: mark them failed (called under the lock)."""
    stuck = [row.version for row in conn.execute(select(versions.c.version).where(versions.c.status == TRAINING))]
    if stuck:
        conn.execute(
            update(versions)
            .where(versions.c.version.in_(stuck))
            .values(status=FAILED, error="the retrain that made it stopped before finishing", updated_at=utcnow())
        )
    return stuck
