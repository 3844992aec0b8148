"""All models, imported so that Alembic and create_all see every table."""
from lti_tool.models.base import Base
from lti_tool.models.console import LaunchRefusal
from lti_tool.models.demo import DemoLineItem, DemoLink, DemoScore
from lti_tool.models.ledger import AuditEvent, Certificate, LedgerEntry
from lti_tool.models.lti import (
    Course,
    Deployment,
    Launch,
    LmsIdentity,
    LoginState,
    Platform,
    RegistrationInvitation,
    RegistrationVersion,
    ResourceLink,
    ToolKey,
)
from lti_tool.models.mail import OutboxMail
from lti_tool.models.outbox import AccessToken, LineItem, OutboxScore, ProgressColumn
from lti_tool.models.people import Account, Enrolment, LinkCode, Person, Registration
from lti_tool.models.progress import ActivityAnswer, ModuleCompletion, QuizAttempt, SectionVisit
from lti_tool.models.workshops import CheckInCode, Workshop, WorkshopRecord

__all__ = [
    "AccessToken",
    "CheckInCode",
    "LaunchRefusal",
    "LineItem",
    "OutboxMail",
    "OutboxScore",
    "ProgressColumn",
    "Workshop",
    "WorkshopRecord",
    "Account",
    "AuditEvent",
    "Certificate",
    "LedgerEntry",
    "LinkCode",
    "Person",
    "Registration",
    "ActivityAnswer",
    "ModuleCompletion",
    "QuizAttempt",
    "SectionVisit",
    "Base",
    "DemoLineItem",
    "DemoLink",
    "DemoScore",
    "Course",
    "Deployment",
    "Enrolment",
    "Launch",
    "LmsIdentity",
    "LoginState",
    "Platform",
    "RegistrationInvitation",
    "ResourceLink",
    "ToolKey",
    "RegistrationVersion",
]
