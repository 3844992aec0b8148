"""Launch throughput bench: full LTI 1.3 launches against the tool and, in the same run, a bare Flask baseline.

    python bench/launch.py --launches 600                    # fresh SQLite file in a temp dir
    python bench/launch.py --database-url postgresql://postgres@127.0.0.1:5432/test_bench   # drops schema public!

Sets up a fresh database (`flask db upgrade`), registers one emulated LMS (tests.platform.PlatformEmulator,
running in this process, serving its key set over HTTP), makes the tool's key, and counts the SQL statements of a
first and a returning launch in-process (a SQLAlchemy `before_cursor_execute` counter, the same app and settings).
Then, each under gunicorn with the same workers x threads on a free loopback port, it drives --warmup +
--launches launches from --concurrency client threads, first against a bare Flask app that answers the same two
requests with no work (bench/baseline_app.py), then against the tool. Each launch: GET /lti/login -> id_token
signed here with the emulator's key -> POST /lti/launch with id_token, state and the cookies -> expect 303.

The client is http.client on one keep-alive connection per thread (bench.common.LeanClient) and reports its own
CPU per launch. On a shared machine absolute figures move with the load; the ratio to the baseline measured in
the same run is the figure to compare. Prints launches/s, p50, p99, server CPU per launch (the gunicorn
processes' /proc stat before and after), SQL statements per launch, the ratio, and PASS/MISS per target (issue
14). Exits 0 on a missed target (it is a measurement), 1 when any launch failed, 2 when the setup failed.
"""
import argparse
import dataclasses
import json
import logging
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import serialization  # noqa: E402

from bench.common import (  # noqa: E402
    LeanClient,
    children,
    database_backends,
    percentile,
    prepare_postgres,
    process_tree_cpu,
)
from tests.platform import PlatformEmulator, state_and_nonce  # noqa: E402

BIN = Path(sys.executable).parent
TARGET_RATIO = 0.40  # of the bare-Flask baseline's launches/s, measured in the same run
TARGET_P99_MS = 150.0  # on PostgreSQL
SECRET_KEY = "bench-secret-key-not-for-production-0123456789abcdef"
TOOL_APP = "lti_tool:create_app()"
BASELINE_APP = "bench.baseline_app:create_app()"
FLOOR_APP = "bench.floor_app:create_app()"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--launches", type=int, default=600, help="measured launches per server")
    p.add_argument("--warmup", type=int, default=100, help="launches before measuring (not timed)")
    p.add_argument("--concurrency", type=int, default=16, help="client threads")
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (both servers)")
    p.add_argument("--threads", type=int, default=4, help="gthread threads per worker (both servers)")
    p.add_argument("--users", type=int, default=500, help="distinct members (subs) the launches cycle through")
    p.add_argument("--database-url", default=None,
                   help="default: fresh SQLite in a temp dir; a postgresql:// URL has its schema public "
                        "DROPPED and recreated")
    p.add_argument("--no-baseline", action="store_true", help="measure the tool only (no ratio)")
    p.add_argument("--floor", action="store_true",
                   help="also measure bench/floor_app.py: the same statements and checks on the raw driver, with no "
                        "framework around them (the least any tool keeping these records can cost)")
    p.add_argument("--max-seconds", type=float, default=120.0, help="stop launching after this long (per server)")
    p.add_argument("--show-server-log", action="store_true", help="let gunicorn's stderr through")
    return p.parse_args(argv)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _text(body: bytes) -> str:
    """The readable part of an error page."""
    text = body.decode(errors="replace")
    main = re.search(r"<main.*?</main>", text, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", main.group(0) if main else text)).strip()[:300]


@dataclasses.dataclass
class Result:
    name: str
    ok: int = 0
    wall: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    database_cpu: float = 0.0
    total_ms: list = dataclasses.field(default_factory=list)
    login_ms: list = dataclasses.field(default_factory=list)
    launch_ms: list = dataclasses.field(default_factory=list)
    sign_ms: list = dataclasses.field(default_factory=list)
    errors: list = dataclasses.field(default_factory=list)
    warmup_errors: int = 0
    stopped: bool = False

    @property
    def rate(self) -> float:
        return self.ok / self.wall if self.wall > 0 else 0.0

    def p(self, q: float) -> float:
        return percentile(sorted(self.total_ms), q)


def start_gunicorn(app_spec: str, port: int, args, env: dict, log_path: Path):
    """Start gunicorn on loopback and wait until every worker answers; return (process, log file)."""
    cmd = [str(BIN / "gunicorn"), "-w", str(args.workers), "-k", "gthread", "--threads", str(args.threads),
           "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--backlog", "2048", app_spec]
    # kept open on purpose: the server writes to it for the whole run, and it is closed when the server stops
    log = None if args.show_server_log else open(log_path, "wb")  # noqa: SIM115
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn ({app_spec}) exited with {server.returncode} (run with --show-server-log)")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    else:
        raise RuntimeError(f"gunicorn ({app_spec}) did not answer within 30 s")
    while len(children(server.pid)) < args.workers and time.monotonic() < deadline:
        time.sleep(0.1)
    return server, log


def stop_gunicorn(server) -> None:
    if server and server.poll() is None:
        server.send_signal(signal.SIGTERM)  # gunicorn: graceful stop of its workers
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="lti-bench-"))
        self.emulator: PlatformEmulator | None = None
        self.servers: list = []
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.stop = threading.Event()
        self.statements: dict[str, int] = {}

    # -- setup --
    def env(self) -> dict:
        env = dict(os.environ)
        env.update({"DATABASE_URL": self.database_url, "PUBLIC_BASE_URL": self.base_url,
                    "SECRET_KEY": SECRET_KEY, "LOG_LEVEL": "WARNING", "LTI_TOOL_ENV": "production",
                    "LTI_TOOL_INSTANCE": str(self.tmp / "instance")})
        return env

    def setup(self):
        a = self.args
        if a.database_url:
            self.database_url = a.database_url
            if a.database_url.startswith(("postgres://", "postgresql")):
                prepare_postgres(a.database_url)
        else:
            self.database_url = f"sqlite:///{self.tmp / 'bench.sqlite3'}"
        t = time.monotonic()
        subprocess.run([str(BIN / "flask"), "--app", "lti_tool", "db", "upgrade"], cwd=ROOT, env=self.env(),
                       check=True, timeout=120, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        print(f"schema: flask db upgrade in {time.monotonic() - t:.1f} s")
        if getattr(a, "floor", False):  # bench/pages.py shares this setup and has no floor
            from bench import floor_app

            floor_app.create_tables(self.database_url)

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the emulator's access log
        self.emulator = PlatformEmulator()
        os.environ.update(self.env())
        from lti_tool import create_app
        from lti_tool.extensions import db
        from lti_tool.lti import keys
        from lti_tool.services import platforms

        app = create_app()
        with app.app_context():
            # Production settings fetch key sets over https only, and the emulator serves plain http on
            # loopback: the registration carries the platform's key set instead (the RS256 check is the same).
            platforms.add_platform({**{k: v for k, v in self.emulator.registration.items() if k != "key_set_url"},
                                    "key_set": {"keys": [self.emulator.active_key.jwk]}})
            keys.ensure_active_key()
            db.session.commit()
            db.session.remove()
        # Sign with the parsed key object: PEM parsing per token would double the client's CPU per launch.
        key = self.emulator.active_key
        self.sign_key = dataclasses.replace(key, private_pem=serialization.load_pem_private_key(
            key.private_pem.encode(), password=None))
        self.count_statements(app)
        with app.app_context():
            db.engine.dispose()

    def launch_request(self, index: int, nonce: str, prefix: str = "bench-member") -> str:
        em = self.emulator
        claims = em.claims_for("member", nonce)
        n = index % self.args.users
        claims.update({"sub": f"{prefix}-{n}", "name": f"Bench Member {n}", "email": f"{prefix}{n}@example.org",
                       "https://purl.imsglobal.org/spec/lti/claim/target_link_uri": self.base_url + "/lti/launch"})
        return em.sign(claims, key=self.sign_key)

    def login_path(self) -> str:
        em = self.emulator
        return "/lti/login?" + urlencode({
            "iss": em.issuer, "login_hint": "member", "target_link_uri": self.base_url + "/lti/launch",
            "client_id": em.client_id, "lti_deployment_id": em.deployment_id})

    def count_statements(self, app):
        """SQL statements of a login and a launch, first and returning, counted in-process on the same app."""
        import sqlalchemy as sa

        from lti_tool.extensions import db

        count = [0]

        def counter(*_args, **_kwargs):
            count[0] += 1

        with app.app_context():
            engine = db.engine
        sa.event.listen(engine, "before_cursor_execute", counter)
        try:
            client = app.test_client()
            for label in ("first", "returning"):
                count[0] = 0
                r = client.get(self.login_path(), base_url=self.base_url)
                if r.status_code != 302:
                    raise RuntimeError(f"in-process login HTTP {r.status_code}: {_text(r.data)}")
                login = count[0]
                state, nonce = state_and_nonce(r.headers["Location"])
                count[0] = 0
                r = client.post("/lti/launch", base_url=self.base_url, data={
                    "id_token": self.launch_request(0, nonce, prefix="count-member"), "state": state})
                if r.status_code != 303:
                    raise RuntimeError(f"in-process launch HTTP {r.status_code}: {_text(r.data)}")
                self.statements[f"{label} login"] = login
                self.statements[f"{label} launch"] = count[0]
        finally:
            sa.event.remove(engine, "before_cursor_execute", counter)

    # -- the load --
    def one_launch(self, client: LeanClient, index: int):
        t0 = time.perf_counter()
        status, location, body = client.request("GET", self.login_path())
        if status != 302 or not location:
            return None, f"login HTTP {status}: {_text(body)}"
        state, nonce = state_and_nonce(location)
        t1 = time.perf_counter()
        id_token = self.launch_request(index, nonce)
        t2 = time.perf_counter()
        status, location, body = client.request("POST", "/lti/launch", urlencode({"id_token": id_token,
                                                                                   "state": state}))
        t3 = time.perf_counter()
        if status != 303:
            return None, f"launch HTTP {status}: {_text(body)}"
        return (t3 - t0, t1 - t0, t2 - t1, t3 - t2), None

    def drive(self, result: Result, count: int, first_index: int, measured: bool, deadline: float):
        lock = threading.Lock()
        next_index = [first_index]

        def client_thread():
            client = LeanClient("127.0.0.1", self.port)
            try:
                while not self.stop.is_set() and time.monotonic() < deadline:
                    with lock:
                        index = next_index[0]
                        if index >= first_index + count:
                            return
                        next_index[0] += 1
                    client.cookies.clear()  # a new browser per launch, as in an LMS iframe
                    try:
                        timing, error = self.one_launch(client, index)
                    except Exception as exc:  # noqa: BLE001 - every failure is counted
                        timing, error = None, f"{exc.__class__.__name__}: {exc}"
                    with lock:
                        if error:
                            result.errors.append(error if measured else "(warm-up) " + error)
                            result.warmup_errors += 0 if measured else 1
                        elif measured:
                            result.ok += 1
                            result.total_ms.append(timing[0] * 1000)
                            result.login_ms.append(timing[1] * 1000)
                            result.sign_ms.append(timing[2] * 1000)
                            result.launch_ms.append(timing[3] * 1000)
            finally:
                client.close()

        threads = [threading.Thread(target=client_thread, daemon=True) for _ in range(self.args.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.2)

    def floor_env(self) -> dict:
        em = self.emulator
        return {**self.env(), "FLOOR_DATABASE_URL": self.database_url, "FLOOR_ISSUER": em.issuer,
                "FLOOR_CLIENT_ID": em.client_id, "FLOOR_AUTH_URL": em.registration["auth_login_url"],
                "FLOOR_JWK": json.dumps(em.active_key.jwk)}

    def measure(self, name: str, app_spec: str, env: dict | None = None) -> Result:
        a = self.args
        result = Result(name)
        server, log = start_gunicorn(app_spec, self.port, a, env or self.env(), self.tmp / f"{name}.log")
        self.servers.append(server)
        try:
            deadline = time.monotonic() + a.max_seconds
            self.drive(result, a.warmup, 0, False, deadline)
            workers = [server.pid, *children(server.pid)]
            server_cpu0 = process_tree_cpu(workers)
            # The database's connections are open after the warm-up (each server thread keeps one).
            backends = database_backends(self.database_url)
            database_cpu0 = process_tree_cpu(backends)
            client_cpu0 = time.process_time()
            t0 = time.perf_counter()
            self.drive(result, a.launches, a.warmup, True, deadline)
            result.wall = time.perf_counter() - t0
            result.client_cpu = time.process_time() - client_cpu0
            result.server_cpu = process_tree_cpu(workers) - server_cpu0
            result.database_cpu = process_tree_cpu(backends) - database_cpu0
            result.stopped = result.ok + len(result.errors) - result.warmup_errors < a.launches
            if result.errors and log:
                log.flush()
                lines = (self.tmp / f"{name}.log").read_text(errors="replace").splitlines()
                result.errors += ["server: " + line for line in lines
                                  if re.search(r"Error|Exception|WARNING|ERROR", line)][:6]
        finally:
            stop_gunicorn(server)
            if log:
                log.close()
        return result

    def report(self, tool: Result, baseline: Result | None, floor: Result | None = None) -> int:
        a = self.args
        backend = "postgresql" if self.database_url.startswith("postgres") else "sqlite"
        fetches = self.emulator.jwks_fetches
        print()
        print(f"config:  {backend}; both servers gunicorn {a.workers} workers x {a.threads} threads (gthread); "
              f"{a.concurrency} client threads (http.client keep-alive) on the same {os.cpu_count()} cores; "
              f"{a.launches} measured launches (+{a.warmup} warm-up) by {a.users} members")
        print("         absolute figures move with the machine's other load; compare the ratio to the baseline")
        print()
        print(f"{'server':<10} {'launches/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'server CPU':>11} "
              f"{'client CPU':>11} {'errors':>7}")
        for r in filter(None, (baseline, floor, tool)):
            print(f"{r.name:<10} {r.rate:>10.1f} {r.p(.5):>8.1f} {r.p(.99):>8.1f} "
                  f"{r.server_cpu / max(r.ok, 1) * 1000:>8.2f} ms {r.client_cpu / max(r.ok, 1) * 1000:>8.2f} ms "
                  f"{len(r.errors) - sum(e.startswith('server: ') for e in r.errors):>7}"
                  + ("  STOPPED at --max-seconds" if r.stopped else ""))
        print("         (server/client CPU are per launch; the client's includes signing the id_token, "
              f"mean {statistics.fmean(tool.sign_ms) if tool.sign_ms else float('nan'):.2f} ms)")
        per_launch = 1000 / max(tool.ok, 1)
        for r in filter(None, (floor, tool)):
            if r.database_cpu:
                print(f"database: PostgreSQL's server processes spent {r.database_cpu * 1000 / max(r.ok, 1):.2f} ms "
                      f"of CPU per {r.name} launch, on the same cores")
        if baseline and baseline.rate:
            # Everything shares the machine's cores: at the target rate each launch may cost this much CPU in all.
            budget = (os.cpu_count() or 1) * 1000 / (TARGET_RATIO * baseline.rate)
            spent = (tool.server_cpu + tool.database_cpu + tool.client_cpu) * per_launch
            print(f"budget:  at {TARGET_RATIO:.2f}x this baseline a launch may cost {budget:.1f} ms of CPU in all "
                  f"(tool server + database + client); it costs {spent:.1f} ms")
        print(f"tool:    login p50 {percentile(sorted(tool.login_ms), .5):.1f} p99 "
              f"{percentile(sorted(tool.login_ms), .99):.1f} ms; launch POST p50 "
              f"{percentile(sorted(tool.launch_ms), .5):.1f} p99 {percentile(sorted(tool.launch_ms), .99):.1f} ms")
        print("SQL statements per launch (login + launch POST): "
              f"first {self.statements['first login']} + {self.statements['first launch']} = "
              f"{self.statements['first login'] + self.statements['first launch']}, returning member "
              f"{self.statements['returning login']} + {self.statements['returning launch']} = "
              f"{self.statements['returning login'] + self.statements['returning launch']}")
        print(f"key-set fetches: {fetches} (the registration carries the key set: production settings fetch over "
              "https only)")
        for r in filter(None, (baseline, floor, tool)):
            for e in r.errors[:5]:
                print(f"    {r.name}:", e.replace("\n", " ")[:400])
        ratio = tool.rate / baseline.rate if baseline and baseline.rate else float("nan")
        if baseline:
            print(f"ratio:   tool / baseline launches/s = {ratio:.2f}x")
        if floor and floor.rate:
            spent = (floor.server_cpu + floor.database_cpu + floor.client_cpu) * 1000 / max(floor.ok, 1)
            print(f"floor:   the same statements and checks with no framework (bench/floor_app.py): floor / baseline "
                  f"= {floor.rate / baseline.rate if baseline and baseline.rate else float('nan'):.2f}x, tool / floor "
                  f"= {tool.rate / floor.rate:.2f}x; a floor launch costs {spent:.1f} ms of CPU in all")
        print()
        errors = len([e for e in tool.errors if not e.startswith("server: ")])
        checks = [
            (f">= {TARGET_RATIO:.2f}x baseline", ratio >= TARGET_RATIO, f"{ratio:.2f}x"),
            (f"p99 < {TARGET_P99_MS:g} ms" + (" (target is for PostgreSQL)" if backend == "sqlite" else ""),
             tool.p(.99) < TARGET_P99_MS, f"{tool.p(.99):.1f} ms"),
            ("0 errors", errors == 0, str(errors)),
        ]
        for name, passed, got in checks:
            print(f"  {'PASS' if passed else 'MISS'}  {name:<44} got {got}")
        return 1 if errors or (baseline and baseline.errors) or (floor and floor.errors) else 0

    def close(self):
        self.stop.set()
        for server in self.servers:
            stop_gunicorn(server)
        if self.emulator:
            self.emulator.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    bench = Bench(args)
    try:
        try:
            bench.setup()
        except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
            detail = getattr(exc, "stderr", None)
            print(f"setup failed: {exc}", detail.decode()[-2000:] if isinstance(detail, bytes) else "",
                  file=sys.stderr)
            return 2
        baseline = None if args.no_baseline else bench.measure("baseline", BASELINE_APP)
        floor = bench.measure("floor", FLOOR_APP, bench.floor_env()) if args.floor else None
        tool = bench.measure("tool", TOOL_APP)
        return bench.report(tool, baseline, floor)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        bench.close()


if __name__ == "__main__":
    sys.exit(main())
