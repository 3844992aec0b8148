"""Launch throughput bench: full LTI 1.3 launches (login, signed id_token, launch) against gunicorn.

    python bench/launch.py                                   # fresh SQLite file in a temp dir
    python bench/launch.py --database-url postgresql://postgres@127.0.0.1:5432/test   # drops schema public!

Sets up a fresh database (`flask db upgrade`), registers one emulated LMS (tests.platform.PlatformEmulator,
running in this process, serving its key set over HTTP), makes the tool's key, starts the tool under
gunicorn on a free loopback port, then drives --warmup + --launches launches from --concurrency client
threads. Each launch: GET /lti/login (no redirects followed) -> id_token signed here with the emulator's key
-> POST /lti/launch with id_token, state and the state cookie -> expect 303.

Prints throughput, latency percentiles, key-set fetches and PASS/MISS per target. Exits 0 on a missed
target (it is a measurement), 1 when any launch failed, 2 when the setup failed.
"""
import argparse
import dataclasses
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

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402

from bench.common import percentile, prepare_postgres  # noqa: E402
from tests.platform import PlatformEmulator, state_and_nonce  # noqa: E402

BIN = Path(sys.executable).parent
TARGET_RATE = 400.0  # launches/s
TARGET_P99_MS = 100.0
TARGET_FETCHES = 1
SECRET_KEY = "bench-secret-key-not-for-production-0123456789abcdef"


def parse_args(argv=None):
    cores = os.cpu_count() or 1
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--launches", type=int, default=2000, help="measured launches")
    p.add_argument("--warmup", type=int, default=100, help="launches before measuring (not timed)")
    p.add_argument("--concurrency", type=int, default=16, help="client threads")
    # 2*cores+1 processes of 2 threads measured best on 2 cores (SQLite and PostgreSQL); the app is CPU-bound
    p.add_argument("--workers", type=int, default=2 * cores + 1, help="gunicorn worker processes")
    p.add_argument("--threads", type=int, default=2, help="gthread threads per worker")
    p.add_argument("--users", type=int, default=500, help="distinct members (subs) the launches cycle through")
    p.add_argument("--database-url", default=None,
                   help="default: fresh SQLite in a temp dir; a postgresql:// URL has its schema public "
                        "DROPPED and recreated")
    p.add_argument("--max-seconds", type=float, default=120.0, help="stop launching after this long (whole run)")
    p.add_argument("--show-server-log", action="store_true", help="let gunicorn's stderr through")
    return p.parse_args(argv)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime+stime of a process (Linux /proc), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _text(body: str) -> str:
    """The readable part of an error page."""
    main = re.search(r"<main.*?</main>", body, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", main.group(0) if main else body)).strip()[:300]


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="lti-bench-"))
        self.emulator: PlatformEmulator | None = None
        self.server: subprocess.Popen | None = None
        self.base_url = ""
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.next_index = 0
        self.errors: list[str] = []
        self.results = []  # (total, login, sign, launch) seconds, measured launches only
        self.warmup_errors = 0
        self.measured_done = 0

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
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        t = time.monotonic()
        subprocess.run([str(BIN / "flask"), "--app", "lti_tool", "db", "upgrade"], cwd=ROOT, env=self.env(),
                       check=True, timeout=120, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        print(f"schema: flask db upgrade in {time.monotonic() - t:.1f} s")

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the emulator's access log
        self.emulator = PlatformEmulator()
        os.environ.update(self.env())
        from lti_tool import create_app
        from lti_tool.extensions import db
        from lti_tool.lti import keys
        from lti_tool.services import platforms

        app = create_app()
        with app.app_context():
            platforms.add_platform(self.emulator.registration)
            keys.ensure_active_key()
            db.session.commit()
            db.session.remove()
            db.engine.dispose()
        # Sign with the parsed key object: PEM parsing per token would double the client's CPU per launch.
        key = self.emulator.active_key
        self.sign_key = dataclasses.replace(key, private_pem=serialization.load_pem_private_key(
            key.private_pem.encode(), password=None))

    def start_server(self):
        a = self.args
        cmd = [str(BIN / "gunicorn"), "-w", str(a.workers), "-k", "gthread", "--threads", str(a.threads),
               "-b", f"127.0.0.1:{self.port}", "--log-level", "warning", "--backlog", "2048",
               "lti_tool:create_app()"]
        print("server:", " ".join(cmd[1:]))
        # kept open on purpose: the server writes to it for the whole run and the report reads it back
        self.server_log = None if a.show_server_log else open(self.tmp / "server.log", "wb")  # noqa: SIM115
        self.server = subprocess.Popen(cmd, cwd=ROOT, env=self.env(), stdin=subprocess.DEVNULL,
                                       stdout=self.server_log, stderr=self.server_log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.server.returncode} (run with --show-server-log)")
            try:
                if requests.get(self.base_url + "/", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("gunicorn did not answer within 30 s")
        # every worker booted (each answers once its app is built)
        while len(children(self.server.pid)) < a.workers and time.monotonic() < deadline:
            time.sleep(0.1)

    # -- the load --
    def one_launch(self, session: requests.Session, index: int):
        em = self.emulator
        t0 = time.perf_counter()
        r = session.get(self.base_url + "/lti/login", allow_redirects=False, timeout=30, params={
            "iss": em.issuer, "login_hint": "member", "target_link_uri": self.base_url + "/lti/launch",
            "client_id": em.client_id, "lti_deployment_id": em.deployment_id})
        if r.status_code != 302:
            return None, f"login HTTP {r.status_code}: {_text(r.text)}"
        state, nonce = state_and_nonce(r.headers["Location"])
        t1 = time.perf_counter()
        claims = em.claims_for("member", nonce)
        n = index % self.args.users
        claims.update({"sub": f"bench-member-{n}", "name": f"Bench Member {n}",
                       "email": f"member{n}@example.org",
                       "https://purl.imsglobal.org/spec/lti/claim/target_link_uri": self.base_url + "/lti/launch"})
        id_token = em.sign(claims, key=self.sign_key)
        t2 = time.perf_counter()
        r = session.post(self.base_url + "/lti/launch", data={"id_token": id_token, "state": state},
                         allow_redirects=False, timeout=30)
        t3 = time.perf_counter()
        if r.status_code != 303:
            return None, f"launch HTTP {r.status_code}: {_text(r.text)}"
        return (t3 - t0, t1 - t0, t2 - t1, t3 - t2), None

    def client(self, total: int, deadline: float, measured_from: int):
        session = requests.Session()
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                with self.lock:
                    index = self.next_index
                    if index >= total:
                        return
                    self.next_index += 1
                try:
                    timing, error = self.one_launch(session, index)
                except Exception as exc:  # noqa: BLE001 - every failure is counted
                    timing, error = None, f"{exc.__class__.__name__}: {exc}"
                with self.lock:
                    if index < measured_from:
                        if error:
                            self.warmup_errors += 1
                            self.errors.append("(warm-up) " + error)
                    elif error:
                        self.errors.append(error)
                        self.measured_done += 1
                    else:
                        self.results.append(timing)
                        self.measured_done += 1
        finally:
            session.close()

    def run_phase(self, count: int, deadline: float):
        start_index = self.next_index
        threads = [threading.Thread(target=self.client, args=(start_index + count, deadline, self.measure_from),
                                    daemon=True) for _ in range(self.args.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.2)

    def run(self):
        a = self.args
        deadline = self.started + a.max_seconds
        self.measure_from = a.warmup
        t = time.monotonic()
        self.run_phase(a.warmup, deadline)
        print(f"warm-up: {a.warmup} launches in {time.monotonic() - t:.1f} s ({self.warmup_errors} errors)")
        workers = children(self.server.pid)
        server_cpu0 = sum(cpu_seconds(p) for p in workers)
        client_cpu0 = time.process_time()
        t0 = time.perf_counter()
        self.run_phase(a.launches, deadline)
        wall = time.perf_counter() - t0
        client_cpu = time.process_time() - client_cpu0
        server_cpu = sum(cpu_seconds(p) for p in workers) - server_cpu0
        return wall, client_cpu, server_cpu

    def report(self, wall, client_cpu, server_cpu) -> int:
        a = self.args
        ok = len(self.results)
        errors = len(self.errors)
        measured_errors = errors - self.warmup_errors
        rate = ok / wall if wall > 0 else 0.0
        total = sorted(r[0] * 1000 for r in self.results)
        login = sorted(r[1] * 1000 for r in self.results)
        sign = [r[2] * 1000 for r in self.results]
        launch = sorted(r[3] * 1000 for r in self.results)
        p50, p95, p99 = (percentile(total, q) for q in (0.5, 0.95, 0.99))
        fetches = self.emulator.jwks_fetches
        backend = "postgresql" if self.database_url.startswith("postgres") else "sqlite"
        print()
        print(f"config:     {backend}, {a.workers} workers x {a.threads} threads (gthread), "
              f"{a.concurrency} client threads, {a.users} distinct members, {os.cpu_count()} cores")
        print(f"launches:   {ok} ok of {a.launches} measured (+{a.warmup} warm-up)"
              + ("" if self.measured_done >= a.launches else f"  STOPPED at --max-seconds {a.max_seconds:g}"))
        print(f"errors:     {errors} ({measured_errors} measured, {self.warmup_errors} warm-up)")
        for e in self.errors[:5]:
            print("   ", e.replace("\n", " ")[:400])
        if errors and getattr(self, "server_log", None):
            self.server_log.flush()
            log = (self.tmp / "server.log").read_text(errors="replace").splitlines()
            first = [line for line in log if re.search(r"Error|Exception|WARNING|ERROR", line)][:6]
            for line in first:
                print("    server:", line[:300])
        print(f"wall time:  {wall:.2f} s")
        print(f"throughput: {rate:.1f} launches/s")
        print(f"latency ms: p50 {p50:.1f}  p95 {p95:.1f}  p99 {p99:.1f}  max {total[-1] if total else float('nan'):.1f}"
              f"   (login p50 {percentile(login, .5):.1f} p99 {percentile(login, .99):.1f}; "
              f"launch POST p50 {percentile(launch, .5):.1f} p99 {percentile(launch, .99):.1f}; "
              f"client RS256 sign mean {statistics.fmean(sign) if sign else float('nan'):.2f})")
        print(f"cpu:        server workers {server_cpu:.1f} s ({server_cpu / max(ok, 1) * 1000:.2f} ms/launch), "
              f"bench process {client_cpu:.1f} s ({client_cpu / max(ok, 1) * 1000:.2f} ms/launch), "
              f"machine capacity {wall * (os.cpu_count() or 1):.1f} s")
        print(f"key-set fetches: {fetches}")
        print()
        checks = [
            (f">= {TARGET_RATE:g} launches/s", rate >= TARGET_RATE, f"{rate:.1f}"),
            (f"p99 < {TARGET_P99_MS:g} ms", p99 < TARGET_P99_MS, f"{p99:.1f} ms"),
            ("0 errors", errors == 0, str(errors)),
            (f"{TARGET_FETCHES} key-set fetch", fetches == TARGET_FETCHES, str(fetches)),
        ]
        for name, passed, got in checks:
            print(f"  {'PASS' if passed else 'MISS'}  {name:<22} got {got}")
        return 1 if errors else 0

    def close(self):
        if self.server and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)  # gunicorn: graceful stop of its workers
            try:
                self.server.wait(15)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(5)
        if self.emulator:
            self.emulator.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    bench = Bench(args)
    bench.started = time.monotonic()
    try:
        try:
            bench.setup()
            bench.start_server()
        except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
            detail = getattr(exc, "stderr", None)
            print(f"setup failed: {exc}", detail.decode()[-2000:] if isinstance(detail, bytes) else "",
                  file=sys.stderr)
            return 2
        wall, client_cpu, server_cpu = bench.run()
        return bench.report(wall, client_cpu, server_cpu)
    except KeyboardInterrupt:
        bench.stop.set()
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        bench.stop.set()
        bench.close()


if __name__ == "__main__":
    sys.exit(main())
