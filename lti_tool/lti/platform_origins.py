"""The registered platforms as the response headers and rate limits see them: issuer and client id pairs, and the
origins that may frame the tool. Read from the database at most every few seconds per process (every response needs
them), and at once after this process changes a registration."""
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app

from lti_tool.extensions import db
from lti_tool.lti import canvas
from lti_tool.models import Platform

#: Another process's new registration is seen within this many seconds (a new LMS frames the tool after its
#: admin has activated the tool and placed it: far longer than this).
CACHE_SECONDS = 10
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


@dataclass(frozen=True)
class Registered:
    """What is registered, as of `read_at`."""

    #: (issuer, client id) of every registration: Canvas cloud's customers share an issuer, not a client id.
    registrations: frozenset[tuple[str, str]]
    frame_origins: tuple[str, ...]
    read_at: float
    generation: int


_generation = 0
_lock = threading.Lock()


def origin(url: str | None) -> str | None:
    """Return the scheme://host[:port] of an http(s) URL, or None when it has none a header may carry."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        value = f"{parts.scheme.lower()}://{parts.netloc.lower().rsplit('@', 1)[-1]}"
    except ValueError:
        return None
    return value if _ORIGIN.match(value) else None


def _frame_origins(rows) -> tuple[str, ...]:
    found: set[str] = set()
    for issuer, auth_login_url, auth_token_url in rows:
        # Moodle frames the tool from its site (the issuer); Canvas from the customer's own host, which its token
        # endpoint names; Canvas cloud's customers all live under *.instructure.com.
        found.update(o for o in (origin(issuer), origin(auth_login_url), origin(auth_token_url)) if o)
        if canvas.is_shared_issuer(issuer):
            found.add(f"https://*.{canvas.SHARED_ISSUERS[issuer.rstrip('/')]}instructure.com")
    extra = current_app.config.get("FRAME_ANCESTORS") or ""
    found.update(o for o in (origin(item.strip()) or _wildcard(item.strip()) for item in extra.split(",")) if o)
    return tuple(sorted(found))


def _wildcard(value: str) -> str | None:
    # An operator may allow all of a vanity domain's hosts: https://*.school.edu
    if value.startswith("https://*.") and origin("https://" + value.removeprefix("https://*.")):
        return value.lower()
    return None


def registered() -> Registered:
    """Return the registered issuers and frame origins (cached per app and process)."""
    cached: Registered | None = current_app.extensions.get("platform_origins")
    now = time.monotonic()
    if cached is not None and cached.generation == _generation and now - cached.read_at < CACHE_SECONDS:
        return cached
    generation = _generation
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(Platform.issuer, Platform.auth_login_url, Platform.auth_token_url,
                                      Platform.client_id)).all()
    fresh = Registered(registrations=frozenset((r[0], r[3]) for r in rows),
                       frame_origins=_frame_origins(r[:3] for r in rows), read_at=now, generation=generation)
    current_app.extensions["platform_origins"] = fresh
    return fresh


def forget() -> None:
    """Read the registrations again on next use (this process changed one)."""
    global _generation
    with _lock:
        _generation += 1


def _registration_changed(*_args) -> None:
    forget()


for _event in ("after_insert", "after_update", "after_delete"):
    sa.event.listen(Platform, _event, _registration_changed)
