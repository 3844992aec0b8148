"""The floor under the tool's launch: only what every launch that keeps its records must do, on the raw driver.

    gunicorn -w 2 -k gthread --threads 4 'bench.floor_app:create_app()'   (FLOOR_* settings in the environment)

(`create_page_app()` at the end is the same idea for a member page: see bench/pages.py --floor.)

`bench/launch.py --floor` measures it in the same run as the bare baseline and the tool. It answers the same two
requests as the tool, with the same round trips to the database and no framework around them: no ORM, no
SQLAlchemy, no rate limiter, no request log, no security headers, no error pages. It skips nothing a launch
stores or checks:

- GET /lti/login: read the registration version; insert the login (state, nonce, platform, parameters);
  commit; set the state cookie (bound to the state by an HMAC); redirect to the platform.
- POST /lti/launch: read the login by its state, with the registration version; check the cookie; check the
  RS256 signature, audience, issuer, expiry and nonce (PyJWT); consume the login (UPDATE ... WHERE used_at IS
  NULL); upsert the account, returning its person (a first launch inserts the person and ties it to the account);
  read the course with the resource link (insert them when new); upsert the enrolment; insert the launch with its
  claims; commit; set the signed session cookie; redirect (303).

So it runs the statements the tool runs (2 + 6 for a returning member, 2 + 8 for a member's first launch in a
known course). What it costs is the least any Flask tool that keeps these records can cost on this machine: if
the floor itself is below a target, no tuning of the tool reaches it.
"""
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
import time
import uuid
from urllib.parse import urlencode

import jwt
from flask import Flask, redirect, request, session

TABLES = [
    "CREATE TABLE floor_version (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)",
    "CREATE TABLE floor_login (state VARCHAR(64) PRIMARY KEY, nonce VARCHAR(64) NOT NULL, platform_id INTEGER NOT "
    "NULL, params TEXT NOT NULL, created_at FLOAT NOT NULL, used_at FLOAT)",
    "CREATE TABLE floor_person (id {serial} PRIMARY KEY, name VARCHAR(300), email VARCHAR(320))",
    "CREATE TABLE floor_account (id {serial} PRIMARY KEY, lms_id INTEGER NOT NULL, sub VARCHAR(255) NOT NULL, "
    "name VARCHAR(300), email VARCHAR(320), person_id INTEGER, last_launch_at FLOAT, UNIQUE (lms_id, sub))",
    "CREATE TABLE floor_course (id {serial} PRIMARY KEY, lms_id INTEGER NOT NULL, context_id VARCHAR(255) NOT NULL, "
    "title VARCHAR(500), UNIQUE (lms_id, context_id))",
    "CREATE TABLE floor_link (id {serial} PRIMARY KEY, course_id INTEGER NOT NULL, link_id VARCHAR(255) NOT NULL, "
    "title VARCHAR(500), custom TEXT, UNIQUE (course_id, link_id))",
    "CREATE TABLE floor_enrolment (account_id INTEGER NOT NULL, course_id INTEGER NOT NULL, roles TEXT, "
    "updated_at FLOAT, PRIMARY KEY (account_id, course_id))",
    "CREATE TABLE floor_launch (id VARCHAR(36) PRIMARY KEY, account_id INTEGER NOT NULL, course_id INTEGER, "
    "link_id INTEGER, claims TEXT NOT NULL, created_at FLOAT NOT NULL)",
    "INSERT INTO floor_version (id, version) VALUES (1, 1)",
]
CONTEXT = "https://purl.imsglobal.org/spec/lti/claim/context"
LINK = "https://purl.imsglobal.org/spec/lti/claim/resource_link"
CUSTOM = "https://purl.imsglobal.org/spec/lti/claim/custom"
ROLES = "https://purl.imsglobal.org/spec/lti/claim/roles"


def _connect(url: str):
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///"):], timeout=30, check_same_thread=False)
        return conn, "?"
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")), "%s"


def create_tables(url: str) -> None:
    """Make the floor's tables (beside the tool's, in the bench's fresh database)."""
    conn, _ = _connect(url)
    serial = "INTEGER" if isinstance(conn, sqlite3.Connection) else "SERIAL"
    for statement in TABLES:
        conn.execute(statement.format(serial=serial))
    conn.commit()
    conn.close()


def create_app() -> Flask:
    env = os.environ
    url, secret = env["FLOOR_DATABASE_URL"], env["SECRET_KEY"]
    issuer, client_id, auth_url = env["FLOOR_ISSUER"], env["FLOOR_CLIENT_ID"], env["FLOOR_AUTH_URL"]
    public_key = jwt.PyJWK(json.loads(env["FLOOR_JWK"])).key  # parsed once, as the tool caches its key sets
    app = Flask(__name__)
    app.secret_key = secret
    local = threading.local()

    def db():
        """One connection per server thread, kept open (the tool's pool keeps one per thread as well)."""
        if not hasattr(local, "conn"):
            local.conn, mark = _connect(url)
            local.sql = {}
            local.mark = mark
        return local.conn

    def run(sql: str, params=()):
        conn = db()
        text = local.sql.get(sql)
        if text is None:
            text = local.sql[sql] = sql.replace("%s", local.mark)
        return conn.execute(text, params)

    def binding(state: str) -> str:
        return hmac.new(secret.encode(), state.encode(), hashlib.sha256).hexdigest()

    @app.get("/lti/login")
    def login():
        args = request.args
        if args.get("iss") != issuer or args.get("client_id") != client_id:
            return "unknown platform", 400
        run("SELECT version FROM floor_version WHERE id = %s", (1,)).fetchone()
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        run("INSERT INTO floor_login (state, nonce, platform_id, params, created_at) VALUES (%s, %s, %s, %s, %s)",
            (state, nonce, 1, json.dumps(dict(args)), time.time()))
        db().commit()
        query = urlencode({"scope": "openid", "response_type": "id_token", "client_id": client_id,
                           "redirect_uri": args["target_link_uri"], "login_hint": args.get("login_hint", ""),
                           "state": state, "nonce": nonce, "response_mode": "form_post", "prompt": "none"})
        response = redirect(f"{auth_url}?{query}", 302)
        response.set_cookie("lti_state_" + state, binding(state), max_age=600, httponly=True, samesite="Lax",
                            path="/lti/")
        return response

    @app.post("/lti/launch")
    def launch():
        state, id_token = request.form.get("state", ""), request.form.get("id_token", "")
        try:
            _version, *login = run(
                "SELECT v.version, l.platform_id, l.nonce, l.created_at, l.used_at FROM floor_version v "
                "LEFT JOIN floor_login l ON l.state = %s WHERE v.id = 1", (state,)).fetchone()
            if login[0] is None or login[3] is not None or time.time() - login[2] > 600:
                return "unknown, used or expired login", 401
            if not hmac.compare_digest(request.cookies.get("lti_state_" + state, ""), binding(state)):
                return "no state cookie", 401
            try:
                claims = jwt.decode(id_token, public_key, algorithms=["RS256"], audience=client_id, issuer=issuer,
                                    leeway=60, options={"require": ["exp", "iat", "iss", "aud", "nonce"]})
            except jwt.InvalidTokenError as exc:
                return f"bad token: {exc}", 401
            if claims["nonce"] != login[1]:
                return "bad nonce", 401
            now = time.time()
            if run("UPDATE floor_login SET used_at = %s WHERE state = %s AND used_at IS NULL",
                   (now, state)).rowcount != 1:
                return "replayed", 401
            account_id, person_id = run(
                "INSERT INTO floor_account (lms_id, sub, name, email, last_launch_at) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (lms_id, sub) DO UPDATE SET name = excluded.name, email = excluded.email, "
                "last_launch_at = excluded.last_launch_at RETURNING id, person_id",
                (1, claims["sub"], claims.get("name"), claims.get("email"), now)).fetchone()
            if person_id is None:
                person_id = run("INSERT INTO floor_person (name, email) VALUES (%s, %s) RETURNING id",
                                (claims.get("name"), claims.get("email"))).fetchone()[0]
                run("UPDATE floor_account SET person_id = %s WHERE id = %s AND person_id IS NULL",
                    (person_id, account_id))
            context, link = claims[CONTEXT], claims[LINK]
            course = run("SELECT c.id, c.title, l.id, l.title, l.custom FROM floor_course c LEFT JOIN floor_link l "
                         "ON l.course_id = c.id AND l.link_id = %s WHERE c.lms_id = %s AND c.context_id = %s",
                         (link["id"], 1, context["id"])).fetchone()
            course_id = course[0] if course else run(
                "INSERT INTO floor_course (lms_id, context_id, title) VALUES (%s, %s, %s) "
                "ON CONFLICT (lms_id, context_id) DO UPDATE SET title = excluded.title RETURNING id",
                (1, context["id"], context.get("title"))).fetchone()[0]
            custom = json.dumps(claims.get(CUSTOM))
            link_pk = course[2] if course and course[2] is not None else run(
                "INSERT INTO floor_link (course_id, link_id, title, custom) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (course_id, link_id) DO UPDATE SET title = excluded.title RETURNING id",
                (course_id, link["id"], link.get("title"), custom)).fetchone()[0]
            run("INSERT INTO floor_enrolment (account_id, course_id, roles, updated_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (account_id, course_id) DO UPDATE SET roles = excluded.roles, "
                "updated_at = excluded.updated_at", (account_id, course_id, " ".join(claims[ROLES]), now))
            launch_id = str(uuid.uuid4())
            run("INSERT INTO floor_launch (id, account_id, course_id, link_id, claims, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s)", (launch_id, account_id, course_id, link_pk, json.dumps(claims),
                                                    now))
            db().commit()
        except BaseException:
            db().rollback()
            raise
        session["launch"] = launch_id
        response = redirect(f"/l/{launch_id}/", 303)
        response.delete_cookie("lti_state_" + state, path="/lti/")
        return response

    return app


def create_page_app() -> Flask:
    """The floor under a member page: the page's own SQL and a template of the page's size, nothing else.

    `bench/pages.py --floor` records, in-process, every statement (and its parameters) the tool runs for one GET of
    each page, the launch check included, and hands them over in a pickle file (FLOOR_PAGES). GET /floor/page/<name>
    checks the signed session cookie (GET /floor/session sets it), runs that page's statements on the raw driver
    (same round trips, same work for the database), commits, and renders the baseline's template to the tool
    page's size.
    """
    import pickle

    from bench.baseline_app import PAGE, ROW_BYTES

    env = os.environ
    url = env["FLOOR_DATABASE_URL"]
    with open(env["FLOOR_PAGES"], "rb") as file:
        pages = pickle.load(file)  # noqa: S301 - written by the bench that started this server
    app = Flask(__name__)
    app.secret_key = env["SECRET_KEY"]
    template = app.jinja_env.from_string(PAGE)
    local = threading.local()

    def db():
        if not hasattr(local, "conn"):
            local.conn, _ = _connect(url)
        return local.conn

    @app.get("/floor/session")
    def start_session():
        session["launch"] = str(uuid.uuid4())
        return "ok"

    @app.get("/floor/page/<name>")
    def page(name: str):
        if "launch" not in session:
            return "no session", 401
        statements, size = pages[name]
        conn = db()
        try:
            for statement, parameters in statements:
                conn.execute(statement, parameters).fetchall()
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        rows = [{"n": n, "title": f"Module {n} & its section", "note": "2.5 hours <required>"}
                for n in range(max(1, size // ROW_BYTES))]
        return template.render(title="Floor page", rows=rows)

    return app
