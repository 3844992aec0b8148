"""Grade passback bench: 1,000 scores through the durable outbox to an AGS endpoint that answers in 100 ms and
fails about 20% of the time (500s, 429s with Retry-After, timeouts), all delivered exactly once.

    python bench/passback.py                          # fresh SQLite file in a temp dir
    python bench/passback.py --database-url postgresql://postgres@127.0.0.1:5432/lti_bench_passback
                                                      # creates lti_bench_passback if missing; DROPS its schema!

The LMS is the test suite's emulator (tests/platform.py) in this process, on loopback, with real OAuth2 tokens
and its real score endpoint; a subclass makes each score answer fail with probability --failure-rate, as a 500,
a 429 with `Retry-After: 1`, or a timeout (the emulator sleeps 3 s; HTTP_TIMEOUT is --http-timeout). Every
failure is retried by the outbox's own rules (backoff from --backoff-base seconds, doubling, with jitter, and at
least Retry-After), so the run ends when the unluckiest score's retries have gone through.

--workers worker loops run at once (threads here, as separate `grades sync --loop` processes would), each
taking --limit scores per batch and sending --concurrency at a time: they share the outbox through its leases.
The schema is built with the real migrations. Prints the time, the throughput, what the LMS saw, and PASS/MISS
against the 15 s target; exits 0 either way (it is a measurement), 2 when the setup failed, 1 when a score was
lost or sent twice.
"""
import argparse
import collections
import logging
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa
from werkzeug.wrappers import Response

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import prepare_postgres  # noqa: E402 needs the repository root on sys.path
from tests.platform import PlatformEmulator  # noqa: E402 needs the repository root on sys.path

TARGET_SECONDS = 15.0
BENCH_DATABASE = "lti_bench_passback"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--scores", type=int, default=1000, help="scores to deliver (one per member)")
    p.add_argument("--delay", type=float, default=0.1, help="seconds the LMS takes to answer a score")
    p.add_argument("--failure-rate", type=float, default=0.2,
                   help="share of the first --scores answers that fail (with --independent: of every answer)")
    p.add_argument("--independent", action="store_true",
                   help="fail every answer, retries included, with probability --failure-rate")
    p.add_argument("--http-timeout", type=float, default=2.0, help="the tool's HTTP_TIMEOUT (the LMS's "
                                                                   "'timeout' answers after 3 s)")
    p.add_argument("--backoff-base", type=float, default=2.0, help="first retry delay (the tool's default is 2)")
    p.add_argument("--workers", type=int, default=1, help="worker loops running at once")
    p.add_argument("--concurrency", type=int, default=100, help="scores each worker sends at once")
    p.add_argument("--limit", type=int, default=1000, help="scores a worker takes per batch")
    p.add_argument("--seed", type=int, default=5, help="seed of the injected failures")
    p.add_argument("--max-seconds", type=float, default=120.0, help="give up after this long")
    p.add_argument("--database-url", default=None,
                   help=f"default: fresh SQLite in a temp dir; PostgreSQL only with a database named "
                        f"{BENCH_DATABASE} (created when missing; its schema public is DROPPED)")
    return p.parse_args(argv)


class FlakyLMS(PlatformEmulator):
    """The emulator, failing some score answers: a 500, a 429 with Retry-After, or a timeout.

    By default `failures` answers fail, spread at random over the first `spread` answers (so 20% of 1,000 scores
    meet one failure, and a retry that comes early can meet another); with `independent` every answer fails
    with probability `failure_rate`, retries included.
    """

    def __init__(self, *args, failures: int = 200, spread: int = 1000, failure_rate: float = 0.2,
                 independent: bool = False, seed: int = 5, **kwargs):
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._plan = set(self._rng.sample(range(spread), min(failures, spread))) if not independent else None
        self.failure_rate = failure_rate
        self.answers = collections.Counter()
        self.delivered_at: list[float] = []
        super().__init__(*args, **kwargs)

    def _score(self, request, line_item_url):
        with self._lock:
            number = sum(self.answers.values())
            failing = (self._rng.random() < self.failure_rate) if self._plan is None else number in self._plan
            kind = ("500", "429", "timeout")[self._rng.randrange(3)] if failing else "ok"
            self.answers[kind] += 1
        if kind == "ok":
            response = super()._score(request, line_item_url)
            with self._lock:
                self.delivered_at.append(time.monotonic())
            return response
        time.sleep(self.score_delay)
        if kind == "timeout":
            time.sleep(3)
            return Response("too slow", status=504)
        if kind == "429":
            return Response("slow down", status=429, headers={"Retry-After": "1"})
        return Response('{"error": "injected 500"}', status=500, mimetype="application/json")


def check_bench_database(url: str) -> None:
    """Refuse any database but the bench's own: its schema is dropped."""
    database = sa.engine.make_url(url).database
    if database != BENCH_DATABASE:
        raise RuntimeError(f"use a database named {BENCH_DATABASE} (its schema is dropped), not {database!r}")


def build(args, url: str):
    """Make the app on a fresh schema, the LMS, its registration and the queued scores; return (app, lms)."""
    import flask_migrate

    from lti_tool import create_app
    from lti_tool.config import normalise_database_url
    from lti_tool.extensions import db
    from lti_tool.lti import keys
    from lti_tool.models import Platform
    from lti_tool.services import passback, platforms

    app = create_app({"SQLALCHEMY_DATABASE_URI": normalise_database_url(url), "SECRET_KEY": "bench",
                      "TESTING": True, "LOG_LEVEL": "WARNING", "HTTP_TIMEOUT": args.http_timeout,
                      "GRADES_RETRY_BASE_SECONDS": args.backoff_base, "GRADES_BACKGROUND_SYNC": False})
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    lms = FlakyLMS(failures=round(args.failure_rate * args.scores), spread=args.scores,
                   failure_rate=args.failure_rate, independent=args.independent, seed=args.seed)
    lms.score_delay = args.delay
    with app.app_context():
        logging.disable(logging.WARNING)
        try:
            flask_migrate.upgrade()
        finally:
            logging.disable(logging.NOTSET)
        keys.ensure_active_key()
        platforms.add_platform(lms.registration)
        db.session.commit()
        lms.tool_jwks = keys.public_jwks()
        platform_id = db.session.scalar(sa.select(Platform.id).where(Platform.issuer == lms.issuer))
        line_item = lms.add_line_item(label="Bargaining Foundations workshop", score_maximum=6)
        started = time.monotonic()
        for n in range(args.scores):
            passback.queue_score(platform_id=platform_id, course_id=None, user_id=f"member-{n:05d}",
                                 score_given=(n % 13) / 2, score_maximum=6, comment=f"Workshop grade {n}",
                                 line_item_url=line_item)
        db.session.commit()
        print(f"queued:     {args.scores} scores in {time.monotonic() - started:.2f} s")
    return app, lms


def run(args, app) -> tuple[float, list]:
    """Run the worker loops until nothing is pending; return (seconds, reports)."""
    from lti_tool import grades_worker
    from lti_tool.extensions import db
    from lti_tool.models import OutboxScore

    reports, lock, done = [], threading.Lock(), threading.Event()
    deadline = time.monotonic() + args.max_seconds

    def worker():
        with app.app_context():
            while not done.is_set() and time.monotonic() < deadline:
                report = grades_worker.send_all_due(args.limit, concurrency=args.concurrency)
                with lock:
                    reports.append(report)
                if report.claimed == 0:
                    pending = db.session.scalar(sa.select(sa.func.count()).where(OutboxScore.status == "pending"))
                    db.session.rollback()
                    if pending == 0:
                        done.set()
                        return
                    time.sleep(0.05)  # what a `grades sync --loop` interval would be, kept short

    started = app.config["BENCH_STARTED"] = time.monotonic()
    threads = [threading.Thread(target=worker, name=f"bench-worker-{n}") for n in range(args.workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started, reports


def main(argv=None) -> int:
    args = parse_args(argv)
    tmp = None
    if args.database_url:
        url = args.database_url
        try:
            check_bench_database(url)
            prepare_postgres(url)
        except Exception as exc:  # noqa: BLE001 - a setup failure is reported, not a traceback
            print(f"setup failed: {exc}", file=sys.stderr)
            return 2
    else:
        tmp = tempfile.mkdtemp(prefix="bench-passback-")
        url = f"sqlite:///{os.path.join(tmp, 'bench.sqlite3')}"
    try:
        print(f"database:   {sa.engine.make_url(url).render_as_string(hide_password=True)}")
        print(f"LMS:        answers in {args.delay * 1000:.0f} ms, {args.failure_rate:.0%} of "
              f"{'all answers' if args.independent else f'the first {args.scores} answers'} fail "
              f"(500 / 429 Retry-After 1 s / timeout at {args.http_timeout:g} s)")
        print(f"workers:    {args.workers} × {args.concurrency} at once, batches of {args.limit}, "
              f"backoff from {args.backoff_base:g} s")
        app, lms = build(args, url)
        seconds, reports = run(args, app)
        lms.stop()
        from lti_tool.extensions import db
        from lti_tool.models import OutboxScore

        with app.app_context():
            by_status = dict(db.session.execute(sa.select(OutboxScore.status, sa.func.count())
                                                .group_by(OutboxScore.status)).all())
            attempts = collections.Counter(db.session.scalars(sa.select(OutboxScore.attempts)))
            stuck = db.session.execute(sa.select(OutboxScore.user_id, OutboxScore.attempts, OutboxScore.last_error)
                                       .where(OutboxScore.status != "sent").limit(5)).all()
        for user_id, failures, error in stuck:
            print(f"not sent:   {user_id} after {failures} failed attempt(s): {error}")
        users = [s["userId"] for s in lms.scores]
        duplicates = len(users) - len(set(users))
        requests = sum(lms.answers.values())
        superseded = sum(r.superseded for r in reports)
        print(f"sent:       {by_status.get('sent', 0)} of {args.scores} (outbox: {by_status})")
        print(f"LMS saw:    {requests} score requests ({dict(lms.answers)}), {len(set(users))} distinct members "
              f"recorded, {duplicates} duplicates; {lms.token_requests} token request(s)")
        print(f"retries:    scores by failed attempts before success: {dict(sorted(attempts.items()))}; "
              f"{superseded} superseded")
        delivered = sorted(t - app.config["BENCH_STARTED"] for t in lms.delivered_at)
        if delivered:
            marks = [(q, delivered[min(len(delivered) - 1, int(q * args.scores) - 1)]) for q in (0.5, 0.8, 0.95, 0.99)]
            print("delivered:  " + ", ".join(f"{q:.0%} by {t:.2f} s" for q, t in marks) +
                  f", all by {delivered[-1]:.2f} s (the tail waits out the retry backoff)")
        print(f"time:       {seconds:.2f} s; throughput {args.scores / seconds:.0f} scores/s "
              f"({requests / seconds:.0f} requests/s)")
        exactly_once = (len(users) == args.scores and duplicates == 0 and by_status.get("sent", 0) == args.scores)
        print(f"exactly once: {'yes' if exactly_once else 'NO'}")
        verdict = "PASS" if exactly_once and seconds <= TARGET_SECONDS else "MISS"
        print(f"{verdict}: {args.scores} scores delivered exactly once in {seconds:.2f} s "
              f"(target {TARGET_SECONDS:g} s)")
        return 0 if exactly_once else 1
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
