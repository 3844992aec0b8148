"""What the staff's console keeps of its own: refused launches, counted per minute."""
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from lti_tool.models.base import Base, UTCDateTime, utcnow


class LaunchRefusal(Base):
    """Refused logins, launches and registrations, one row per minute, platform, network address and reason.

    A flood of refusals from one place adds to `count` instead of adding rows (services.launch_log), so the table
    grows with the variety of refusals, not their number.
    """

    __tablename__ = "launch_refusals"
    __table_args__ = (sa.UniqueConstraint("minute", "platform_id", "address", "reason"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The minute (UTC) the refusals fell in.
    minute: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    #: The registration the request named, 0 when it named none the tool knows (no foreign key: the log outlives
    #: a removed registration, and an unknown issuer must not add a row per invented name).
    platform_id: Mapped[int] = mapped_column(default=0)
    #: The issuer the request claimed (the first one of the minute; truncated).
    issuer: Mapped[str | None] = mapped_column(sa.String(300))
    #: The network address (IPv6: its /64), or "many" when one process saw too many kinds in a minute.
    address: Mapped[str] = mapped_column(sa.String(64))
    #: The reason code (LaunchError.reason) and the admin-readable message of the latest refusal.
    reason: Mapped[str] = mapped_column(sa.String(50))
    message: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[int] = mapped_column(default=400)
    #: Which step refused: /lti/login, /lti/launch, /lti/register...
    path: Mapped[str] = mapped_column(sa.String(100))
    count: Mapped[int] = mapped_column(default=1)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
