"""gunicorn settings for the tool: `gunicorn -c deploy/gunicorn.conf.py` (every value from the environment).

WEB_CONCURRENCY worker processes (default: 2 per core, at most 8) × GUNICORN_THREADS threads (default 4), on
BIND (default 127.0.0.1:$PORT, PORT 8000: the reverse proxy in front terminates TLS). The app writes one JSON
line per request itself (request id, route, status, duration, platform, role: `lti_tool/request_log.py`), so
gunicorn's own access log is off; its error log is JSON lines too.
"""
import multiprocessing
import os

wsgi_app = "lti_tool:create_app()"
bind = os.environ.get("BIND") or f"127.0.0.1:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY") or min(8, 2 * multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
# A slow LMS never holds a web worker: calls to platforms have their own deadline (LTI_HTTP_TIMEOUT).
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 30)
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then (with jitter, so not all at once) to cap any slow growth in memory.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS") or 2000)
max_requests_jitter = 200
# The proxy sets X-Forwarded-*; the app trusts one hop when TRUST_PROXY=1.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "pythonjsonlogger.json.JsonFormatter",
                            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
                            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"}}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    # The root logger gets its JSON handler from the app itself (lti_tool/request_log.py): none here, or each
    # line would be written twice.
    "root": {"level": loglevel.upper(), "handlers": []},
    "loggers": {"gunicorn.error": {"handlers": ["stderr"], "level": loglevel.upper(), "propagate": False},
                "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False}},
}
