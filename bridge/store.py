"""The only module with SQL: small keyword-only functions over a ``Session``.

SQLite by default (WAL, so readers never wait for the writer); any SQLAlchemy URL works, PostgreSQL included.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import Any, TypedDict

from sqlalchemy import event as sa_event
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, create_engine, delete, select, update

from bridge.models import Client, Event, Instance, Lease, McpSessionRow, Meta, PortLease, Rollout, utcnow
from bridge.storage import storage_error

__all__ = ["IntegrityError", "Session"]


def make_engine(url: str, *, busy_timeout: float = 30) -> Engine:
    """``busy_timeout``: seconds a SQLite write waits for another writer's lock before DatabaseBusy (503)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_timeout})

        @sa_event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
    else:
        engine = create_engine(url, pool_pre_ping=True)
    SQLModel.metadata.create_all(engine)
    _add_missing_columns(engine)
    return engine


def _add_missing_columns(engine: Engine) -> None:
    """Additive schema changes only: a column added in a newer version is added to an older database.

    Anything beyond that (renames, type changes) would need a real migration tool; none has been needed.
    """
    inspector = inspect(engine)
    with engine.begin() as conn:
        for table in SQLModel.metadata.sorted_tables:
            present = {column["name"] for column in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present and column.nullable:
                    kind = column.type.compile(dialect=engine.dialect)
                    conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))


@contextmanager
def session(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error. A full disk or a database locked past the
    wait comes out as ``InsufficientStorage`` (507) or ``DatabaseBusy`` (503), never as the driver's error."""
    with Session(engine, expire_on_commit=False) as db:
        try:
            yield db
            db.commit()
        except Exception as exc:
            with suppress(Exception):  # a rollback on a full disk may fail too; the transaction is gone either way
                db.rollback()
            mapped = storage_error(exc)
            if mapped is not None and mapped is not exc:
                raise mapped from exc
            raise
        except BaseException:
            db.rollback()
            raise


# ---- clients -----------------------------------------------------------------------------------------


def get_client(db: Session, *, client_id: str) -> Client | None:
    return db.get(Client, client_id)


def list_clients(db: Session) -> list[Client]:
    return list(db.exec(select(Client).order_by(Client.id)))


def add_client(
    db: Session,
    *,
    client_id: str,
    workspace: str,
    profile: str,
    token_hash: str,
    workspace_identity: dict[str, int] | None = None,
    languages: list[str] | None = None,
) -> Client:
    client = Client(
        id=client_id, workspace=workspace, profile=profile, token_hash=token_hash,
        workspace_identity=workspace_identity, languages=languages,
    )
    db.add(client)
    db.flush()
    return client


def set_token_hash(db: Session, *, client_id: str, token_hash: str) -> None:
    client = db.get(Client, client_id)
    if client is not None:
        client.token_hash = token_hash
        db.add(client)


def delete_client(db: Session, *, client_id: str) -> None:
    db.exec(delete(Instance).where(col(Instance.client_id) == client_id))
    db.exec(delete(PortLease).where(col(PortLease.client_id) == client_id))
    db.exec(delete(Client).where(col(Client.id) == client_id))


# ---- instances ---------------------------------------------------------------------------------------


def list_instances(db: Session, *, client_id: str | None = None) -> list[Instance]:
    query = select(Instance).order_by(Instance.client_id, Instance.service)
    if client_id is not None:
        query = query.where(Instance.client_id == client_id)
    return list(db.exec(query))


def get_instance(db: Session, *, client_id: str, service: str) -> Instance | None:
    query = select(Instance).where(Instance.client_id == client_id, Instance.service == service)
    return db.exec(query).first()


def add_instance(db: Session, *, client_id: str, service: str, port: int) -> Instance:
    instance = Instance(client_id=client_id, service=service, port=port)
    db.add(instance)
    db.flush()
    return instance


def update_instance(db: Session, *, client_id: str, service: str, **fields: Any) -> Instance | None:
    instance = get_instance(db, client_id=client_id, service=service)
    if instance is None:
        return None
    for name, value in fields.items():
        setattr(instance, name, value)
    db.add(instance)
    return instance


# ---- port leases -------------------------------------------------------------------------------------


def leased_ports(db: Session) -> set[int]:
    return set(db.exec(select(PortLease.port)))


def list_leases(db: Session) -> list[PortLease]:
    return list(db.exec(select(PortLease).order_by(PortLease.port)))


def add_lease(db: Session, *, port: int, client_id: str, service: str) -> PortLease:
    lease = PortLease(port=port, client_id=client_id, service=service)
    db.add(lease)
    db.flush()  # the primary key on port makes a concurrent double lease fail here
    return lease


def release_leases(
    db: Session, *, client_id: str, service: str | None = None, port: int | None = None
) -> list[int]:
    query = select(PortLease).where(PortLease.client_id == client_id)
    if service is not None:
        query = query.where(PortLease.service == service)
    if port is not None:
        query = query.where(PortLease.port == port)
    leases = list(db.exec(query))
    for lease in leases:
        db.delete(lease)
    return [lease.port for lease in leases]


# ---- MCP sessions ------------------------------------------------------------------------------------


def list_mcp_sessions(db: Session) -> list[McpSessionRow]:
    return list(db.exec(select(McpSessionRow)))


def put_mcp_session(db: Session, row: McpSessionRow) -> None:
    db.merge(row)


def delete_mcp_sessions(db: Session, *, ids: list[str] | None = None, client_id: str | None = None) -> None:
    query = select(McpSessionRow)
    if ids is not None:
        query = query.where(McpSessionRow.id.in_(ids))  # type: ignore[attr-defined]
    if client_id is not None:
        query = query.where(McpSessionRow.client_id == client_id)
    for row in db.exec(query):
        db.delete(row)


# ---- installation facts ------------------------------------------------------------------------------


def installation_id(db: Session) -> str:
    """The id shared by every bridge on this database, made once. Runtime labels carry it, so a bridge
    never takes another installation's containers on the same engine for orphans of its own."""
    row = db.get(Meta, "installation")
    if row is None:
        row = Meta(key="installation", value=uuid.uuid4().hex[:12])
        db.add(row)
        try:
            db.flush()
        except IntegrityError:  # another bridge made it first
            db.rollback()
            row = db.get(Meta, "installation")
    return row.value


# ---- rollouts and versions ---------------------------------------------------------------------------

_VERSION, _ACTIVE = "version:", "rollout:"  # Meta keys: a service's current version; its active rollout's id


def current_versions(db: Session) -> dict[str, str]:
    """Each service's version since its last finished rollout (services never rolled out are absent)."""
    rows = db.exec(select(Meta).where(col(Meta.key).startswith(_VERSION)))
    return {row.key.removeprefix(_VERSION): row.value for row in rows}


def set_current_version(db: Session, *, service: str, version: str) -> None:
    db.merge(Meta(key=_VERSION + service, value=version))


def add_rollout(db: Session, rollout: Rollout) -> Rollout | None:
    """Insert ``rollout`` unless its service has an active one (None then). Atomic among bridges: the
    service's ``rollout:`` Meta row is the lock, its primary key lets only one insert win."""
    db.add(rollout)
    db.flush()
    db.add(Meta(key=_ACTIVE + rollout.service, value=str(rollout.id)))
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        return None
    return rollout


def active_rollouts(db: Session) -> list[Rollout]:
    ids = [int(row.value) for row in db.exec(select(Meta).where(col(Meta.key).startswith(_ACTIVE)))]
    return list(db.exec(select(Rollout).where(col(Rollout.id).in_(ids)))) if ids else []


def latest_rollout(db: Session, *, service: str) -> Rollout | None:
    query = select(Rollout).where(Rollout.service == service).order_by(col(Rollout.id).desc()).limit(1)
    return db.exec(query).first()


def list_rollouts(db: Session, *, limit: int = 100) -> list[Rollout]:
    return list(db.exec(select(Rollout).order_by(col(Rollout.id).desc()).limit(limit)))


def update_rollout(db: Session, *, rollout_id: int, expect: frozenset[str] | None = None, **fields: Any) -> bool:
    """Set ``fields`` of the rollout, only while its state is one of ``expect`` (when given): a pause or an
    abort written by another bridge is never overwritten. False when the state did not match."""
    query = update(Rollout).where(col(Rollout.id) == rollout_id)
    if expect is not None:
        query = query.where(col(Rollout.state).in_(expect))
    return bool(db.exec(query.values(updated_at=utcnow(), **fields)).rowcount)  # type: ignore[attr-defined]


def release_rollout(db: Session, *, service: str) -> None:
    """The service's rollout has ended: the next one may start."""
    db.exec(delete(Meta).where(col(Meta.key) == _ACTIVE + service))


def get_rollout(db: Session, *, rollout_id: int) -> Rollout | None:
    return db.get(Rollout, rollout_id)


# ---- leases between bridges --------------------------------------------------------------------------


def acquire_lease(db: Session, *, name: str, holder: str, ttl: float) -> bool:
    """Take or renew the lease unless another holder's is still valid. Atomic on SQLite and PostgreSQL:
    one conditional UPDATE, or an INSERT that the primary key lets only one bridge win."""
    now = utcnow()
    until = now + timedelta(seconds=ttl)
    renewed = db.exec(
        update(Lease)
        .where(col(Lease.name) == name)
        .where((col(Lease.holder) == holder) | (col(Lease.expires_at) < now))
        .values(holder=holder, expires_at=until)
    )
    if renewed.rowcount:
        return True
    if db.get(Lease, name) is not None:
        return False
    db.add(Lease(name=name, holder=holder, expires_at=until))
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        return False
    return True


def release_lease(db: Session, *, name: str, holder: str) -> None:
    db.exec(delete(Lease).where(col(Lease.name) == name, col(Lease.holder) == holder))


def lease_holder(db: Session, *, name: str) -> Lease | None:
    return db.get(Lease, name)


# ---- events ------------------------------------------------------------------------------------------


class EventFields(TypedDict, total=False):
    """What an event may say besides its kind and message (add_event's defaults: info, no client, no service)."""

    level: str
    client_id: str | None
    service: str | None


def add_event(
    db: Session,
    *,
    kind: str,
    message: str,
    level: str = "info",
    client_id: str | None = None,
    service: str | None = None,
) -> Event:
    event = Event(kind=kind, message=message, level=level, client_id=client_id, service=service, ts=utcnow())
    db.add(event)
    db.flush()
    return event


def prune_events(db: Session, *, keep: int) -> int:
    """Delete every event but the newest ``keep``; the number deleted."""
    cutoff = db.exec(select(Event.id).order_by(col(Event.id).desc()).offset(keep).limit(1)).first()
    if cutoff is None:
        return 0
    return db.exec(delete(Event).where(col(Event.id) <= cutoff)).rowcount  # type: ignore[attr-defined]


def list_events(db: Session, *, client_id: str | None = None, limit: int = 100) -> list[Event]:
    query = select(Event).order_by(col(Event.id).desc()).limit(limit)
    if client_id is not None:
        query = query.where(Event.client_id == client_id)
    return list(db.exec(query))
