"""The bare Flask baseline the benchmarks divide by: the same requests as the tool, answered with no work.

    gunicorn -w 2 -k gthread --threads 4 'bench.baseline_app:create_app()'

GET /lti/login sets a state cookie and redirects (302) to an authorize URL carrying a state and a nonce;
POST /lti/launch reads the id_token form field and answers 303; GET /page/<bytes> renders a template whose
output is about that many bytes (rows of links with escaped text), the stand-in for a member page.
"""
import secrets

from flask import Flask, redirect, request

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title></head>
<body><main><h1>{{ title }}</h1><ul>
{% for row in rows %}<li><a href="/page/{{ row.n }}">{{ row.title }}</a> <span>{{ row.note }}</span></li>
{% endfor %}</ul></main></body></html>
"""
ROW_BYTES = 102  # one rendered <li> row above, about (escaping included)


def create_app() -> Flask:
    app = Flask(__name__)
    page = app.jinja_env.from_string(PAGE)  # compiled once, as Flask caches file templates

    @app.get("/lti/login")
    def login():
        state, nonce = "state-" + secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        response = redirect(f"{request.args['iss']}/authorize?state={state}&nonce={nonce}", 302)
        response.set_cookie("lti1p3-" + state, state, httponly=True, samesite="Lax")
        return response

    @app.post("/lti/launch")
    def launch():
        if not request.form.get("id_token") or not request.form.get("state"):
            return "missing id_token", 400
        return redirect("/page/100", 303)

    @app.get("/page/<int:size>")
    def sized_page(size: int):
        rows = [{"n": n, "title": f"Module {n} & its section", "note": "2.5 hours <required>"}
                for n in range(max(1, size // ROW_BYTES))]
        return page.render(title="Baseline page", rows=rows)

    return app
