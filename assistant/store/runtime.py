"""Runtime settings shared by every app replica (see ``RuntimeSetting``): plain functions of a Connection."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from assistant.store.tables import RuntimeSetting, utcnow

runtime = RuntimeSetting.__table__
NLU_ENDPOINT = "nlu.url"  # {"url": ...}: parse with this NLU server instead of the configured one


def read_all(conn: Connection) -> dict[str, Any]:
    return {row.key: row.value for row in conn.execute(select(runtime.c.key, runtime.c.value))}


def put(conn: Connection, key: str, value: dict[str, Any]) -> None:
    if conn.execute(update(runtime).where(runtime.c.key == key).values(value=value, updated_at=utcnow())).rowcount:
        return
    conn.execute(insert(runtime).values(key=key, value=value, updated_at=utcnow()))


def remove(conn: Connection, key: str) -> None:
    conn.execute(delete(runtime).where(runtime.c.key == key))
