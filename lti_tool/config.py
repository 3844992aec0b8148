"""Settings: defaults first, then environment variables (the README lists them), then create_app() overrides."""
import os
from pathlib import Path


def normalise_database_url(url: str) -> str:
    """Point plain PostgreSQL URLs at the psycopg 3 driver the tool installs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def load_settings(instance_path: str) -> dict:
    """Build the settings from defaults and the environment."""
    env = os.environ
    mode = env.get("LTI_TOOL_ENV", "development")
    production = mode == "production"
    default_db = "sqlite:///" + str(Path(instance_path) / "lti_tool.sqlite3")
    database_url = normalise_database_url(env.get("DATABASE_URL", default_db))
    base_url = env.get("PUBLIC_BASE_URL", "http://localhost:5000").rstrip("/")
    secure = base_url.startswith("https://")
    return {
        "ENV_MODE": mode,
        "SECRET_KEY": env.get("SECRET_KEY") or ("" if production else "dev-only-not-secret"),
        "SQLALCHEMY_DATABASE_URI": database_url,
        # A ping per pool checkout finds connections the database dropped, at one round trip per request;
        # LTI_DATABASE_PRE_PING=0 skips it where connections are not dropped (a local database, pgbouncer off).
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": env.get("LTI_DATABASE_PRE_PING", "1") != "0"},
        "PUBLIC_BASE_URL": base_url,
        "DEMO_PLATFORM": env.get("LTI_DEMO_PLATFORM", "0" if production else "1") == "1",
        "LTI_CLOCK_LEEWAY": int(env.get("LTI_CLOCK_LEEWAY", "60")),
        "LTI_KEY_SET_REFETCH_SECONDS": int(env.get("LTI_KEY_SET_REFETCH_SECONDS", "30")),
        # Dynamic Registration needs a one-time invitation (`flask --app lti_tool registration create`) in
        # production; in development it is also open without one, for the demo and local LMSs.
        "REGISTRATION_WITHOUT_INVITATION": not production,
        "CONTENT_DIR": env.get("LTI_CONTENT_DIR") or str(Path(__file__).resolve().parent.parent / "content"),
        "TRUST_PROXY": env.get("TRUST_PROXY", "0") == "1",
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO"),
        # json: one JSON object per line (request id, route, status, duration, platform, role); text: for people.
        "LOG_FORMAT": env.get("LOG_FORMAT", "json" if production else "text").lower(),
        # Inside an LMS iframe the cookies are third-party: they need SameSite=None; Secure, and
        # Partitioned (CHIPS) keeps them working where the browser blocks unpartitioned third-party cookies.
        "SESSION_COOKIE_NAME": "lti_tool_session",
        "SESSION_COOKIE_SECURE": secure,
        "SESSION_COOKIE_SAMESITE": "None" if secure else "Lax",
        "SESSION_COOKIE_PARTITIONED": secure,
        "SESSION_COOKIE_HTTPONLY": True,
        "PERMANENT_SESSION_LIFETIME": 8 * 3600,
        # The session cookie is written when it changes (each launch), not re-signed on every page: a launch ends
        # 8 hours after it was made (auth.LAUNCH_LIFETIME) however often its pages are read.
        "SESSION_REFRESH_EACH_REQUEST": False,
        # An id_token is a few KB; anything far beyond that is not a launch.
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "MAX_FORM_MEMORY_SIZE": 256 * 1024,
        "WTF_CSRF_TIME_LIMIT": None,
        "WTF_CSRF_SSL_STRICT": False,  # LMS iframes send no same-origin Referer
        # Requests to platforms (lti/http.py): the total seconds one request may take, the most bytes read from an
        # answer, and where they may go: in production https and public addresses only, plus the networks a lab
        # allows (LTI_OUTBOUND_ALLOWED_NETWORKS, e.g. "10.20.0.0/16"); in development anywhere (local LMSs).
        "HTTP_TIMEOUT": float(env.get("LTI_HTTP_TIMEOUT", "10")),
        "HTTP_MAX_BYTES": int(env.get("LTI_HTTP_MAX_BYTES", str(4 * 1024 * 1024))),
        "OUTBOUND_HTTPS_ONLY": production,
        "OUTBOUND_PUBLIC_ONLY": production,
        "OUTBOUND_ALLOWED_NETWORKS": env.get("LTI_OUTBOUND_ALLOWED_NETWORKS", ""),
        "OUTBOUND_CA_FILE": env.get("LTI_OUTBOUND_CA_FILE") or None,
        # Rate-limit counters: per process in development; set REDIS_URL so every app server shares them.
        "REDIS_URL": env.get("REDIS_URL") or None,
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI") or env.get("REDIS_URL") or "memory://",
        "RATELIMIT_ENABLED": env.get("RATELIMIT_ENABLED", "1") == "1",
        # Refused launches (a bad token, an unknown key, a replay) per client address and per registered platform
        # (issuer + client id): once over, that address or platform gets 429 for the rest of the window. Successful
        # launches do not count.
        "RATELIMIT_REFUSED_LAUNCHES_PER_ADDRESS": env.get("RATELIMIT_REFUSED_LAUNCHES_PER_ADDRESS", "30 per minute"),
        "RATELIMIT_REFUSED_LAUNCHES_PER_PLATFORM": env.get("RATELIMIT_REFUSED_LAUNCHES_PER_PLATFORM", "300 per minute"),
        # Origins allowed to frame the tool besides the registered platforms' (a Canvas on a vanity domain):
        # "https://canvas.school.edu, https://*.school.edu".
        "FRAME_ANCESTORS": env.get("LTI_FRAME_ANCESTORS", ""),
        # Days the console's launch log keeps launches and refused launches (`flask --app lti_tool launches purge`).
        "LAUNCH_LOG_DAYS": int(env.get("LAUNCH_LOG_DAYS", "30")),
        # Set it when several tools (or a staging copy) share one Redis, so their counts stay apart.
        "RATELIMIT_KEY_PREFIX": env.get("RATELIMIT_KEY_PREFIX", ""),
        # Email (services/mail.py): without SMTP_HOST, development writes emails to the log and /dev/mail, and
        # production keeps them queued until it is set. SMTP_TLS: starttls (default), ssl, or none.
        "SMTP_HOST": env.get("SMTP_HOST") or None,
        "SMTP_PORT": int(env.get("SMTP_PORT") or "587"),
        "SMTP_TLS": (env.get("SMTP_TLS") or "starttls").lower(),
        "SMTP_USER": env.get("SMTP_USER") or None,
        "SMTP_PASSWORD": env.get("SMTP_PASSWORD") or None,
        "SMTP_TIMEOUT": float(env.get("SMTP_TIMEOUT") or "20"),
        "MAIL_FROM": env.get("MAIL_FROM") or "Bargaining Certificate <bargaining-certificate@localhost>",
        # Send queued gradebook scores from a thread of the web process (development); in production run
        # `flask --app lti_tool grades sync --loop` under a process manager instead.
        "GRADES_BACKGROUND_SYNC": env.get("GRADES_BACKGROUND_SYNC", "0" if production else "1").lower()
        in ("1", "true", "yes", "on"),
    }
