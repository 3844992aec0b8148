"""The launch log: recent launches, and every refused login, launch or registration with its reason.

Refusals are counted, not listed one by one: one row per minute, registration, network address and reason, its
count raised by a single upsert. A flood of refused launches therefore adds at most one row per kind per minute,
and a process that sees too many kinds in one minute (addresses made up by the thousand) folds the rest into one
"many addresses" row.
"""
import ipaddress
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from lti_tool.extensions import db
from lti_tool.models import Account, Launch, LaunchRefusal, Platform
from lti_tool.models.base import rowcount, utcnow

log = logging.getLogger(__name__)

#: Distinct rows one process writes in one minute before it folds the rest into "many addresses".
MAX_KINDS_PER_MINUTE = 200
MANY = "many addresses"
DEFAULT_DAYS = 30

_seen_lock = threading.Lock()
_seen: dict[datetime, set[tuple]] = {}


def network_of(address: str | None) -> str:
    """Return the address to count under: an IPv4 address, or an IPv6 address's /64 (one subscriber's block)."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return "unknown"
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip.ipv4_mapped or ip) if ip.version == 6 else str(ip)


def _minute(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)


def _fold(key: tuple, minute: datetime) -> bool:
    """Return True when this process already wrote too many kinds of refusal this minute (fold into MANY)."""
    with _seen_lock:
        for old in [m for m in _seen if m != minute]:
            del _seen[old]
        kinds = _seen.setdefault(minute, set())
        if key in kinds:
            return False
        if len(kinds) >= MAX_KINDS_PER_MINUTE:
            return True
        kinds.add(key)
        return False


def _platform_id(issuer: str | None, client_id: str | None) -> int:
    if not issuer:
        return 0
    query = sa.select(Platform.id).where(Platform.issuer == issuer)
    if client_id:
        query = query.where(Platform.client_id == client_id)
    found = db.session.scalars(query.limit(2)).all()
    return found[0] if len(found) == 1 else 0


def record_refusal(*, reason: str, message: str, status: int, path: str, issuer: str | None,
                   client_id: str | None, address: str | None, now: datetime | None = None) -> None:
    """Count one refusal (flushes; the caller commits)."""
    now = now or utcnow()
    minute = _minute(now)
    platform_id = _platform_id(issuer, client_id)
    network = network_of(address)
    reason = (reason or "unknown")[:50]
    if _fold((platform_id, network, reason), minute):
        network = MANY
    values = {"minute": minute, "platform_id": platform_id, "address": network, "reason": reason,
              "issuer": (issuer or "")[:300] or None, "message": (message or "")[:2000], "status": status,
              "path": (path or "")[:100], "count": 1, "last_at": now}
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(LaunchRefusal).values(**values)
    table = LaunchRefusal.__table__
    db.session.execute(statement.on_conflict_do_update(
        index_elements=["minute", "platform_id", "address", "reason"],
        set_={"count": table.c.count + 1, "last_at": statement.excluded.last_at,
              "message": statement.excluded.message, "status": statement.excluded.status}))


@dataclass(frozen=True)
class Refusal:
    minute: datetime
    last_at: datetime
    platform: str
    issuer: str | None
    address: str
    reason: str
    message: str
    status: int
    path: str
    count: int


@dataclass(frozen=True)
class LaunchRow:
    created_at: datetime
    platform: str
    person: str
    role: str
    course: str | None
    message_type: str


def _platform_names() -> dict[int, str]:
    return {p.id: p.name for p in db.session.scalars(sa.select(Platform))}


def refusals(*, platform_id: int | None = None, reason: str | None = None, days: int = DEFAULT_DAYS,
             limit: int = 500) -> list[Refusal]:
    """Return the refusals of the last `days` days, newest first, of one registration (0: unknown) and reason."""
    query = sa.select(LaunchRefusal).where(LaunchRefusal.minute >= utcnow() - timedelta(days=days))
    if platform_id is not None:
        query = query.where(LaunchRefusal.platform_id == platform_id)
    if reason:
        query = query.where(LaunchRefusal.reason == reason)
    names = _platform_names()
    return [Refusal(minute=r.minute, last_at=r.last_at,
                    platform=names.get(r.platform_id, "a removed registration") if r.platform_id else
                    "no registration the tool knows", issuer=r.issuer, address=r.address, reason=r.reason,
                    message=r.message, status=r.status, path=r.path, count=r.count)
            for r in db.session.scalars(query.order_by(LaunchRefusal.last_at.desc(), LaunchRefusal.id.desc())
                                        .limit(limit))]


def reasons_seen(days: int = DEFAULT_DAYS) -> list[str]:
    """Return the reason codes refused in the last `days` days (for the filter)."""
    return list(db.session.scalars(sa.select(LaunchRefusal.reason).distinct()
                                   .where(LaunchRefusal.minute >= utcnow() - timedelta(days=days))
                                   .order_by(LaunchRefusal.reason)))


def recent_launches(*, platform_id: int | None = None, days: int = DEFAULT_DAYS, limit: int = 200) -> list[LaunchRow]:
    """Return the latest launches (of one registration when given), newest first."""
    query = (sa.select(Launch.created_at, Platform.name, Account.name, Account.sub, Launch.role, Launch.message_type,
                       Launch.course_id)
             .join(Platform, Platform.id == Launch.platform_id).join(Account, Account.id == Launch.account_id)
             .where(Launch.created_at >= utcnow() - timedelta(days=days)))
    if platform_id is not None:
        query = query.where(Launch.platform_id == platform_id)
    rows = db.session.execute(query.order_by(Launch.created_at.desc()).limit(limit)).all()
    from lti_tool.models import Course

    course_ids = {r.course_id for r in rows if r.course_id}
    courses = {c.id: c.title or c.label or c.context_id
               for c in db.session.scalars(sa.select(Course).where(Course.id.in_(course_ids)))} if course_ids else {}
    return [LaunchRow(created_at=r.created_at, platform=r[1], person=r[2] or f"LMS user {r.sub}", role=r.role,
                      course=courses.get(r.course_id), message_type=r.message_type) for r in rows]


def last_launches() -> dict[int, datetime]:
    """Return each registration's latest launch time."""
    return dict(db.session.execute(sa.select(Launch.platform_id, sa.func.max(Launch.created_at))
                                   .group_by(Launch.platform_id)).all())


def purge(days: int) -> tuple[int, int]:
    """Delete the refusals and launches older than `days` days; return how many of each went.

    A launch signs a browser in for eight hours; after that it is only this log's record (and its claims hold
    personal data), so it goes with the log.
    """
    if days < 1:
        raise ValueError("Keep the launch log at least one day.")
    cutoff = utcnow() - timedelta(days=days)
    refused = rowcount(db.session.execute(sa.delete(LaunchRefusal).where(LaunchRefusal.minute < cutoff)))
    launched = rowcount(db.session.execute(sa.delete(Launch).where(Launch.created_at < cutoff)))
    return refused, launched
