"""LMSs and their registrations (platforms), deployments, the tool's keys, courses, resource links and launches."""
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lti_tool.models.base import Base, UTCDateTime, utcnow

if TYPE_CHECKING:  # for the annotation only: the relationship finds Account by name
    from lti_tool.models.people import Account


class LmsIdentity(Base):
    """One LMS, however many times the tool is registered in it: what accounts and courses belong to.

    LTI makes `sub` unique within an issuer, so where an issuer names one LMS (Moodle, a self-hosted Canvas) the
    issuer alone is the LMS, and two registrations of it (a dynamic one and one by hand) share members, courses and
    hours. Where many customers share the issuer (Canvas cloud) only issuer + client id names one LMS.
    """

    __tablename__ = "lms_identities"
    __table_args__ = (sa.UniqueConstraint("issuer", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The issuer without a trailing slash.
    issuer: Mapped[str] = mapped_column(sa.String(500))
    #: The client id where the issuer is shared between customers (Canvas cloud); empty where the issuer is one LMS.
    client_id: Mapped[str] = mapped_column(sa.String(255), default="")
    #: A label for admins: the name of the first registration.
    name: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Platform(Base):
    """One registration of the tool in one LMS: found by issuer *and* client id."""

    __tablename__ = "platforms"
    __table_args__ = (sa.UniqueConstraint("issuer", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The LMS this registration is in (services.platforms.lms_for): its accounts and courses are that LMS's.
    lms_id: Mapped[int] = mapped_column(sa.ForeignKey("lms_identities.id", ondelete="RESTRICT"), index=True)
    #: A label for admins ("District Canvas", "State university Moodle").
    name: Mapped[str] = mapped_column(sa.String(200))
    issuer: Mapped[str] = mapped_column(sa.String(500))
    client_id: Mapped[str] = mapped_column(sa.String(255))
    auth_login_url: Mapped[str] = mapped_column(sa.String(1000))
    auth_token_url: Mapped[str] = mapped_column(sa.String(1000))
    #: The audience of the client-credentials assertion when it differs from the token URL.
    auth_audience: Mapped[str | None] = mapped_column(sa.String(1000))
    key_set_url: Mapped[str | None] = mapped_column(sa.String(1000))
    #: A key set pasted by the admin instead of a URL (or the demo platform's own).
    key_set: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    #: The last key set fetched from key_set_url; shared by every worker so each key is fetched once.
    cached_key_set: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    key_set_fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Trust a new deployment id in a launch signed by this platform (set by Dynamic Registration when the
    #: platform does not say the deployment id, as Canvas does: it makes deployments when admins install).
    accept_new_deployments: Mapped[bool] = mapped_column(default=False)
    #: "manual", "dynamic" (LTI Dynamic Registration) or "demo".
    registered_by: Mapped[str] = mapped_column(sa.String(20), default="manual")
    #: The LMS product seen in registration or launches ("canvas", "moodle", ...), for admins.
    product: Mapped[str | None] = mapped_column(sa.String(100))
    #: Set when an admin disabled the registration: its logins and launches are refused until it is enabled again.
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    lms: Mapped[LmsIdentity] = relationship()
    deployments: Mapped[list["Deployment"]] = relationship(
        back_populates="platform", cascade="all, delete-orphan", order_by="Deployment.id"
    )

    @property
    def disabled(self) -> bool:
        """Whether an admin disabled this registration."""
        return self.disabled_at is not None


class Deployment(Base):
    """An installation of the tool inside a platform (a Canvas account or course, a Moodle tool type)."""

    __tablename__ = "deployments"
    __table_args__ = (sa.UniqueConstraint("platform_id", "deployment_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform_id: Mapped[int] = mapped_column(sa.ForeignKey("platforms.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    platform: Mapped[Platform] = relationship(back_populates="deployments")


class RegistrationVersion(Base):
    """One row whose number grows with every change to a platform or deployment, in the same transaction.

    Each app process caches registrations under the number it read (lti/tool_config.py); a change committed by
    any process gives a new number, so every process reads the registrations again at its next launch.
    """

    __tablename__ = "registration_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(sa.BigInteger, default=0)


#: The row exists from the start, however the schema is built (create_all in tests, the migration otherwise).
FIRST_REGISTRATION_VERSION = "INSERT INTO registration_version (id, version) VALUES (1, 0)"
sa.event.listen(RegistrationVersion.__table__, "after_create", sa.DDL(FIRST_REGISTRATION_VERSION))


class RegistrationInvitation(Base):
    """A one-time Dynamic Registration link for one institution; only a hash of its secret is kept."""

    __tablename__ = "registration_invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The institution it was made for ("Springfield University").
    name: Mapped[str] = mapped_column(sa.String(200))
    #: SHA-256 of the secret in the link (the secret is random, 192 bits: a plain hash is enough).
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Set, atomically, when a registration starts with it; cleared again if that registration fails.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The registration it made (or, for an LMS's update of an existing one, the registration it concerned).
    platform_id: Mapped[int | None] = mapped_column(sa.ForeignKey("platforms.id", ondelete="SET NULL"))
    #: "registered" (a new registration) or "unchanged" (an LMS's update that changed nothing here).
    outcome: Mapped[str | None] = mapped_column(sa.String(20))

    platform: Mapped[Platform | None] = relationship()


class ToolKey(Base):
    """An RSA key pair the tool signs with; the JWKS publishes the active key and the one before it."""

    __tablename__ = "tool_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    kid: Mapped[str] = mapped_column(sa.String(64), unique=True)
    private_key_pem: Mapped[str] = mapped_column(sa.Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Set when a newer key took over; the key is still published until the next rotation.
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Course(Base):
    """An LMS course (LTI context), per LMS and context id, whichever registration it is launched through."""

    __tablename__ = "courses"
    __table_args__ = (sa.UniqueConstraint("lms_id", "context_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lms_id: Mapped[int] = mapped_column(sa.ForeignKey("lms_identities.id", ondelete="CASCADE"))
    context_id: Mapped[str] = mapped_column(sa.String(255))
    title: Mapped[str | None] = mapped_column(sa.String(500))
    label: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    lms: Mapped[LmsIdentity] = relationship()


class ResourceLink(Base):
    """A placement of the tool in a course (a Canvas assignment or link, a Moodle activity); as the course, it is
    the LMS's, whichever registration launches it."""

    __tablename__ = "resource_links"
    __table_args__ = (sa.UniqueConstraint("course_id", "resource_link_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(sa.ForeignKey("courses.id", ondelete="CASCADE"))
    resource_link_id: Mapped[str] = mapped_column(sa.String(255))
    title: Mapped[str | None] = mapped_column(sa.String(500))
    #: The custom parameters the placement carries (module slug, mode), as last launched.
    custom: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoginState(Base):
    """One OIDC login in flight: its state and nonce, kept server-side and used at most once."""

    __tablename__ = "login_states"

    state: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(sa.String(64), unique=True)
    platform_id: Mapped[int] = mapped_column(sa.ForeignKey("platforms.id", ondelete="CASCADE"))
    #: The login parameters, to restart the login in a new window when the iframe loses its cookies.
    login_params: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    #: The platform's postMessage storage frame, when it offered one (lti_storage_target).
    storage_target: Mapped[str | None] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    #: Set, atomically, by the one launch that consumed this state and nonce.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Launch(Base):
    """A validated launch: who, where, in which role, with the claims kept server-side."""

    __tablename__ = "launches"
    #: The console's last launch per registration and its launch log read this index.
    __table_args__ = (sa.Index("ix_launches_platform_id_created_at", "platform_id", "created_at"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    platform_id: Mapped[int] = mapped_column(sa.ForeignKey("platforms.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"))
    course_id: Mapped[int | None] = mapped_column(sa.ForeignKey("courses.id", ondelete="CASCADE"))
    resource_link_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("resource_links.id", ondelete="CASCADE")
    )
    message_type: Mapped[str] = mapped_column(sa.String(50))
    #: member, instructor or admin: what this launch may do in this course.
    role: Mapped[str] = mapped_column(sa.String(20))
    claims: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    #: When the deep-linking picker answered the LMS for this launch: a launch is answered once (no duplicate
    #: workshops from a resubmitted form).
    deep_link_answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: When the launch was carried into a new window (browsers that block cookies in the LMS iframe); once only.
    handoff_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    platform: Mapped[Platform] = relationship()
    account: Mapped["Account"] = relationship()
    course: Mapped[Course | None] = relationship()
    resource_link: Mapped[ResourceLink | None] = relationship()
