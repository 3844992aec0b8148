"""All models, imported so that Alembic and create_all see every table."""
from lti_tool.models.base import Base
from lti_tool.models.lti import (
    Course,
    Deployment,
    Launch,
    LoginState,
    Platform,
    ResourceLink,
    ToolKey,
)
from lti_tool.models.people import Account, Enrolment

__all__ = [
    "Account",
    "Base",
    "Course",
    "Deployment",
    "Enrolment",
    "Launch",
    "LoginState",
    "Platform",
    "ResourceLink",
    "ToolKey",
]
