"""Health checks for load balancers and process managers: cheap, unauthenticated, and saying nothing secret."""
import functools
import logging
import os

import sqlalchemy as sa
from flask import Blueprint, current_app

from lti_tool import transaction
from lti_tool.extensions import db

bp = Blueprint("health", __name__)
log = logging.getLogger("lti_tool.health")

MIGRATIONS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "migrations")


@functools.cache
def migration_heads() -> frozenset[str]:
    """Return the revisions the code expects the database to be at (read once per process)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", MIGRATIONS_DIR)
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def _redis(url: str):
    # One client (and connection pool) per process and URL: a probe every few seconds opens no new connections.
    import redis

    clients = current_app.extensions.setdefault("readyz_redis", {})
    if url not in clients:
        clients[url] = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    return clients[url]


def _no_store(body: dict, status: int):
    response = current_app.response_class(current_app.json.dumps(body), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/healthz")
def healthz():
    """Say the process answers (no database call)."""
    return _no_store({"status": "ok"}, 200)


@bp.get("/readyz")
def readyz():
    """Say whether this server can serve: database reachable, schema at the code's migrations, Redis reachable when
    REDIS_URL is set. 503 with the failing check's name otherwise (details go to the log, never the answer)."""
    checks: dict[str, str] = {}
    try:
        versions = set(db.session.scalars(sa.text("SELECT version_num FROM alembic_version")))
        checks["database"] = "ok"
        checks["migrations"] = "ok" if versions == set(migration_heads()) else "not at head: run db upgrade"
    except Exception:  # noqa: BLE001 - any failure means not ready
        transaction.abandon()
        log.warning("readyz: database check failed", exc_info=True)
        if "database" not in checks:
            try:
                db.session.execute(sa.text("SELECT 1"))
                checks["database"], checks["migrations"] = "ok", "not at head: run db upgrade"
            except Exception:  # noqa: BLE001
                transaction.abandon()
                checks["database"], checks["migrations"] = "unreachable", "unknown"
    finally:
        transaction.abandon()  # no transaction left open on a pooled connection
    redis_url = current_app.config.get("REDIS_URL")
    if redis_url:
        try:
            _redis(redis_url).ping()
            checks["redis"] = "ok"
        except Exception:  # noqa: BLE001
            log.warning("readyz: Redis check failed", exc_info=True)
            checks["redis"] = "unreachable"
    else:
        checks["redis"] = "not configured"
    ready = all(value in ("ok", "not configured") for value in checks.values())
    return _no_store({"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503)
