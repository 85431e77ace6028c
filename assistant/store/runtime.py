"""Runtime settings shared by every app replica (see ``RuntimeSetting``): plain functions of a Connection."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from assistant.store.locks import holder_is_dead
from assistant.store.tables import RuntimeSetting, utcnow

runtime = RuntimeSetting.__table__
# {"url": ..., "holder": ...}: parse with this NLU server instead of the configured one. The process that set
# it (``holder``) refreshes ``updated_at`` while it needs it: a holder that died (SIGKILL during the swap) leaves
# an override that expires, at once on the same host, else after the lock's stale time.
NLU_ENDPOINT = "nlu.url"


def read_all(conn: Connection) -> dict[str, Any]:
    return {row.key: row.value for row in conn.execute(select(runtime.c.key, runtime.c.value))}


def put(conn: Connection, key: str, value: dict[str, Any]) -> None:
    if conn.execute(update(runtime).where(runtime.c.key == key).values(value=value, updated_at=utcnow())).rowcount:
        return
    conn.execute(insert(runtime).values(key=key, value=value, updated_at=utcnow()))


def remove(conn: Connection, key: str) -> None:
    conn.execute(delete(runtime).where(runtime.c.key == key))


def touch(conn: Connection, key: str) -> None:
    """The holder of ``key`` still needs it (its heartbeat)."""
    conn.execute(update(runtime).where(runtime.c.key == key).values(updated_at=utcnow()))


def nlu_endpoint(conn: Connection, stale_after_s: float) -> str | None:
    """The NLU override's URL, or None; an expired override (its holder died) is removed on the way."""
    row = conn.execute(select(runtime.c.value, runtime.c.updated_at).where(runtime.c.key == NLU_ENDPOINT)).first()
    if row is None:
        return None
    value, updated = row.value or {}, row.updated_at
    now = utcnow()
    updated = updated if updated.tzinfo else updated.replace(tzinfo=now.tzinfo)
    holder = value.get("holder")
    if holder and (holder_is_dead(holder) or now - updated > timedelta(seconds=stale_after_s)):
        remove(conn, NLU_ENDPOINT)
        return None
    return value.get("url")
