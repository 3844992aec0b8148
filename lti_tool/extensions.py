"""Flask extensions, created bare and bound to the app in create_app()."""
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect

from lti_tool.models.base import Base

# Objects stay readable after the request's one commit (a redirect needs the new launch's id): no reload.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
csrf = CSRFProtect()

#: Rate limits (refused launches, check-in codes, verification look-ups). Counts live in RATELIMIT_STORAGE_URI:
#: memory in development, Redis when several app servers must share them.
limiter = Limiter(get_remote_address, default_limits=[], headers_enabled=False)
