"""A named lock in the database (so two retrains refuse each other across processes, hosts and app
replicas sharing one Postgres). The holder beats a heart; a lock whose holder died is taken over:
at once when the holder was a process on this host that no longer exists, else after ``stale_after_s``."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

from sqlalchemy import Connection, delete, insert, select, update

from assistant.store.tables import Lock, utcnow

locks = Lock.__table__


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_is_dead(holder: str) -> bool:
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def try_acquire(conn: Connection, name: str, holder: str, stale_after_s: float = 120.0) -> str | None:
    """Take the lock; returns None when taken, else who holds it. Raises IntegrityError on a lost race."""
    now = utcnow()
    row = conn.execute(select(locks.c.holder, locks.c.heartbeat_at).where(locks.c.name == name)).first()
    if row is None:
        conn.execute(insert(locks).values(name=name, holder=holder, acquired_at=now, heartbeat_at=now))
        return None
    heartbeat = row.heartbeat_at if row.heartbeat_at.tzinfo else row.heartbeat_at.replace(tzinfo=now.tzinfo)
    if not (holder_is_dead(row.holder) or now - heartbeat > timedelta(seconds=stale_after_s)):
        return str(row.holder)
    taken = conn.execute(  # compare-and-swap: only if nobody took it over meanwhile
        update(locks)
        .where(locks.c.name == name, locks.c.holder == row.holder)
        .values(holder=holder, acquired_at=now, heartbeat_at=now)
    )
    return None if taken.rowcount == 1 else "another process that took it over just now"


def heartbeat(conn: Connection, name: str, holder: str) -> bool:
    result = conn.execute(
        update(locks).where(locks.c.name == name, locks.c.holder == holder).values(heartbeat_at=utcnow())
    )
    return result.rowcount == 1


def release(conn: Connection, name: str, holder: str) -> None:
    conn.execute(delete(locks).where(locks.c.name == name, locks.c.holder == holder))
