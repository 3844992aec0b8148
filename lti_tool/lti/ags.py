"""Assignment and Grade Services: read a launch's AGS claim, post scores, find or create line items.

Calls go through service_client (cached tokens, timeouts, Link paging). Line items the tool finds or creates are
kept in the `line_items` table, so each is looked up in the LMS once.
"""
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import sqlalchemy as sa

from lti_tool.extensions import db
from lti_tool.lti import service_client
from lti_tool.lti.claims import Claim, Scope
from lti_tool.models import LineItem, Platform
from lti_tool.models.base import utcnow

SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
LINE_ITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINE_ITEM_CONTAINER_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
RESULT_CONTAINER_TYPE = "application/vnd.ims.lis.v2.resultcontainer+json"
#: Pages of a line item container to read at most (a course has tens of columns, not thousands).
MAX_PAGES = 50
#: A line item row whose URL starts with this is a lock: one worker is creating that line item in the LMS.
_CREATING = "creating:"


class ActivityProgress(StrEnum):
    """The score's `activityProgress` (AGS 2.0): where the member is with the activity."""

    INITIALIZED = "Initialized"
    STARTED = "Started"
    IN_PROGRESS = "InProgress"
    SUBMITTED = "Submitted"
    COMPLETED = "Completed"


class GradingProgress(StrEnum):
    """The score's `gradingProgress` (AGS 2.0): where the grading of it is."""

    FULLY_GRADED = "FullyGraded"
    PENDING = "Pending"
    PENDING_MANUAL = "PendingManual"
    FAILED = "Failed"
    NOT_READY = "NotReady"


ACTIVITY_PROGRESS = tuple(p.value for p in ActivityProgress)
GRADING_PROGRESS = tuple(p.value for p in GradingProgress)
#: AGS takes a comment of this many characters at most from the tool (platforms cut longer ones differently).
MAX_COMMENT = 4000


def iso_timestamp(when: datetime) -> str:
    """Write a score's timestamp as AGS wants it: ISO 8601 with sub-second precision and a zone."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def score_payload(*, user_id: str, score_given, score_maximum, activity_progress: str, grading_progress: str,
                  timestamp: datetime, comment: str | None = None) -> dict:
    """Build the AGS score (application/vnd.ims.lis.v1.score+json); no scoreGiven for a score not given."""
    if activity_progress not in ACTIVITY_PROGRESS or grading_progress not in GRADING_PROGRESS:
        raise ValueError("unknown activityProgress or gradingProgress")
    payload = {
        "userId": user_id,
        "scoreGiven": float(Decimal(str(score_given))) if score_given is not None else None,
        "scoreMaximum": float(Decimal(str(score_maximum))),
        "activityProgress": str(activity_progress),
        "gradingProgress": str(grading_progress),
        "timestamp": iso_timestamp(timestamp),
    }
    if comment:
        payload["comment"] = comment[:MAX_COMMENT]
    if payload["scoreGiven"] is None:
        del payload["scoreGiven"]
    return payload


class LineItemBusy(Exception):
    """Another worker is creating this line item right now: try again in a moment."""


@dataclass(frozen=True)
class Endpoint:
    """The AGS endpoint claim of a launch."""

    lineitem: str | None
    lineitems: str | None
    scopes: frozenset[str]

    @property
    def can_post_scores(self) -> bool:
        """Whether the platform lets the tool post scores (to the link's line item or one it finds)."""
        return Scope.AGS_SCORE in self.scopes and bool(self.lineitem or self.lineitems)

    @property
    def can_manage_line_items(self) -> bool:
        """Whether the tool may look up and create line items in the container."""
        return Scope.AGS_LINEITEM in self.scopes and bool(self.lineitems)


def endpoint(claims: dict | None) -> Endpoint | None:
    """Read the AGS endpoint claim of a launch (None when the platform offers no grade service)."""
    value = (claims or {}).get(Claim.AGS_ENDPOINT)
    if not isinstance(value, dict):
        return None
    scopes = value["scope"] if isinstance(value.get("scope"), list) else []
    lineitem = value.get("lineitem") if isinstance(value.get("lineitem"), str) else None
    lineitems = value.get("lineitems") if isinstance(value.get("lineitems"), str) else None
    return Endpoint(lineitem=lineitem or None, lineitems=lineitems or None,
                    scopes=frozenset(s for s in scopes if isinstance(s, str)))


def scores_url(line_item_url: str) -> str:
    """Return the line item's scores endpoint: `/scores` goes before any query (Moodle's have `?type_id=`)."""
    parts = urlsplit(line_item_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/scores"))


def with_query(url: str, **params) -> str:
    """Add query parameters to a URL, keeping the ones it has."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + [(k, v) for k, v in params.items() if v]
    return urlunsplit(parts._replace(query=urlencode(query)))


def post_score(platform: Platform, line_item_url: str, payload: dict, *,
               deadline: float | None = None) -> service_client.ServiceResponse:
    """POST a score to a line item, all of it before `deadline` (time.monotonic()) when given; raise
    service_client.ServiceError when the LMS does not take it."""
    return service_client.call(platform, [Scope.AGS_SCORE], "POST", scores_url(line_item_url), json_body=payload,
                               content_type=SCORE_TYPE, deadline=deadline)


#: Canvas: 400 "Provided timestamp of ... before last updated timestamp of ..."; Moodle: 409 "Refusing score
#: with an earlier timestamp ...". Both compare the score's `timestamp` with the result they hold.
_NOT_NEWER = re.compile(r"timestamp.{0,80}(before|earlier|older|newer|not after)|(earlier|older) timestamp",
                        re.IGNORECASE | re.DOTALL)


def refused_as_not_newer(error: service_client.ServiceError) -> bool:
    """Whether the LMS refused a score because it already holds one with the same or a later timestamp."""
    if error.status == 409:
        return True  # Moodle's only 409 for scores
    return error.status == 400 and bool(_NOT_NEWER.search(error.body or ""))


def _matches(item: dict, spec: dict) -> bool:
    if spec.get("resourceLinkId") and item.get("resourceLinkId") != spec["resourceLinkId"]:
        return False
    if spec.get("tag") and item.get("tag") == spec["tag"]:
        return True
    if spec.get("resourceId") and item.get("resourceId") == spec["resourceId"]:
        return True
    # Only a resource link to go by: that link's own column.
    return not spec.get("tag") and not spec.get("resourceId") and bool(spec.get("resourceLinkId"))


def _cached(platform_id: int, course_id: int | None, spec: dict) -> LineItem | None:
    match_on = []
    if spec.get("tag"):
        match_on.append(LineItem.tag == spec["tag"])
    if spec.get("resourceId"):
        match_on.append(LineItem.resource_id == spec["resourceId"])
    query = sa.select(LineItem).where(
        LineItem.platform_id == platform_id, ~LineItem.url.startswith(_CREATING),
        LineItem.course_id.is_(None) if course_id is None else LineItem.course_id == course_id,
        LineItem.resource_link_id.is_(None) if not spec.get("resourceLinkId")
        else LineItem.resource_link_id == spec["resourceLinkId"])
    if match_on:
        query = query.where(sa.or_(*match_on))
    return db.session.scalars(query.order_by(LineItem.id)).first()


def _marker(spec: dict) -> str:
    key = "#".join(str(spec.get(k) or "") for k in ("lineitems", "resourceLinkId", "tag", "resourceId"))
    return _CREATING + hashlib.sha256(key.encode()).hexdigest()


def _lock(platform_id: int, course_id: int | None, marker: str, stale_after: timedelta) -> None:
    """Take the right to create this line item, across workers and processes (a unique row as the lock)."""
    now = utcnow()
    try:
        # Its own transaction: other workers must see the lock at once, whatever the caller does.
        with db.engine.begin() as conn:
            conn.execute(sa.insert(LineItem).values(platform_id=platform_id, course_id=course_id, url=marker,
                                                    score_maximum=0, created_at=now))
        return
    except sa.exc.IntegrityError:
        pass
    with db.engine.begin() as conn:  # a lock left by a worker that died is taken over once it is stale
        taken = conn.execute(sa.update(LineItem).where(
            LineItem.platform_id == platform_id, LineItem.url == marker,
            LineItem.created_at < now - stale_after).values(created_at=now)).rowcount
    if taken != 1:
        raise LineItemBusy(marker)


def _unlock(platform_id: int, marker: str) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.delete(LineItem).where(LineItem.platform_id == platform_id, LineItem.url == marker))


def _find_in_lms(platform: Platform, spec: dict) -> dict | None:
    if spec.get("resourceLinkId"):
        url = with_query(spec["lineitems"], resource_link_id=spec["resourceLinkId"])
    else:
        url = with_query(spec["lineitems"], tag=spec.get("tag"), resource_id=spec.get("resourceId"))
    for _ in range(MAX_PAGES):
        response = service_client.call(platform, [Scope.AGS_LINEITEM], "GET", url, accept=LINE_ITEM_CONTAINER_TYPE)
        items = response.body if isinstance(response.body, list) else []
        # Match here too: not every LMS applies the filters.
        found = next((i for i in items if isinstance(i, dict) and i.get("id") and _matches(i, spec)), None)
        if found or not response.next_url:
            return found
        url = response.next_url
    return None


def _create_in_lms(platform: Platform, spec: dict) -> dict:
    body = {"label": spec.get("label") or "Bargaining Certificate", "scoreMaximum": float(spec["scoreMaximum"])}
    for name in ("resourceLinkId", "resourceId", "tag"):
        if spec.get(name):
            body[name] = spec[name]
    response = service_client.call(platform, [Scope.AGS_LINEITEM], "POST", spec["lineitems"], json_body=body,
                                   content_type=LINE_ITEM_TYPE, accept=LINE_ITEM_TYPE)
    if not isinstance(response.body, dict) or not response.body.get("id"):
        raise service_client.ServiceError("The LMS created a line item but did not say its URL.",
                                          status=response.status)
    return {**body, **response.body}


def find_or_create_line_item(platform: Platform, spec: dict, *, course_id: int | None = None,
                             lock_seconds: float = 60) -> LineItem:
    """Return the line item `spec` describes: from the cache, found in the LMS, or created there.

    `spec` is {"lineitems", "resourceLinkId", "label", "scoreMaximum", "resourceId", "tag"}. Only one worker
    creates a given line item at a time; another gets LineItemBusy and tries again later, so two workers never
    make two gradebook columns for one thing.
    """
    cached = _cached(platform.id, course_id, spec)
    if cached is not None:
        return cached
    marker = _marker(spec)
    _lock(platform.id, course_id, marker, timedelta(seconds=lock_seconds))
    try:
        cached = _cached(platform.id, course_id, spec)  # another worker may have just finished
        if cached is not None:
            return cached
        item = _find_in_lms(platform, spec) or _create_in_lms(platform, spec)
        values = {
            "platform_id": platform.id, "course_id": course_id, "url": item["id"][:1000],
            "label": (item.get("label") or spec.get("label") or "")[:300] or None,
            "score_maximum": Decimal(str(item.get("scoreMaximum") or spec["scoreMaximum"])),
            "resource_id": spec.get("resourceId") or item.get("resourceId"),
            "resource_link_id": spec.get("resourceLinkId") or item.get("resourceLinkId"),
            "tag": spec.get("tag") or item.get("tag"), "created_at": utcnow()}
        with db.engine.begin() as conn:  # visible to every worker before the lock goes
            conn.execute(_upsert_line_item(conn.dialect.name, values))
    finally:
        _unlock(platform.id, marker)
    found = _cached(platform.id, course_id, spec)
    if found is None:  # the LMS's item disagrees with the spec (another tag): use it by its URL
        found = db.session.scalars(sa.select(LineItem).where(LineItem.platform_id == platform.id,
                                                             LineItem.url == values["url"])).one()
    return found


def _upsert_line_item(dialect: str, values: dict):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]  # same API, other dialect
    statement = insert(LineItem).values(values)
    return statement.on_conflict_do_update(
        index_elements=["platform_id", "url"],
        set_={name: statement.excluded[name] for name in values if name not in ("platform_id", "url", "created_at")})


def forget_line_item(platform_id: int, url: str) -> None:
    """Drop a cached line item (the LMS says it is gone), so the next score finds or creates it again."""
    db.session.execute(sa.delete(LineItem).where(LineItem.platform_id == platform_id, LineItem.url == url))
