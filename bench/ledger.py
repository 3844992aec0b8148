"""Ledger bench: one person's progress and the whole program's progress export, at 50,000 people.

    python bench/ledger.py                                   # fresh SQLite file in a temp dir
    python bench/ledger.py --database-url postgresql://postgres@127.0.0.1:5432/lti_bench
                                                             # creates lti_bench if missing; DROPS schema public!

Builds a fresh database with the real migrations (`flask_migrate.upgrade()`, so the append-only triggers are
there), one platform, and --people people, each with one account and 10 ledger entries: Foundations and
Democratized Bargaining in whole modules or partial workshop chunks, several electives, and for about a
third of people a reversal of one earlier entry. People who meet the rules get a certificate. Rows go in
with Core `insert()` executemany in batches, in one transaction per table and batch.

The database is built in two halves: after the first half (people/2) the export is measured; after the
second the export and `person_progress` are measured, so the export's growth from N/2 to N is shown.

  * person_progress(person_id): --samples random people after --warmup calls, each call in the app context
    with fresh session state (db.session.remove() after every call, outside the timed region: a request
    starts with an empty session too, so the timed call includes taking a pooled connection).
  * export: `as_csv(progress_rows(current_catalog()))` consumed fully, counting rows and UTF-8 bytes.

On PostgreSQL the tables are ANALYZEd after each load, as autovacuum would after a bulk load.
Prints PASS/MISS per target; exits 0 either way (it is a measurement), 2 when the setup failed.
"""
import argparse
import cProfile
import io
import logging
import os
import pstats
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bench.common import percentile, prepare_postgres  # noqa: E402

TARGET_PERSON_P95_MS = 5.0
TARGET_EXPORT_S = 5.0
#: Doubling the people should about double the export time: "linear" is a ratio within this band.
LINEAR_RATIO = (1.6, 2.4)
ENTRIES_PER_PERSON = 10
SEED = 20260101


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--people", type=int, default=50_000, help="people in the full database")
    p.add_argument("--samples", type=int, default=1000, help="measured person_progress calls")
    p.add_argument("--warmup", type=int, default=100, help="person_progress calls before measuring")
    p.add_argument("--batch", type=int, default=5000, help="rows per executemany")
    p.add_argument("--database-url", default=None,
                   help="default: fresh SQLite in a temp dir; a postgresql:// URL has its schema public "
                        "DROPPED and recreated (its database is created when missing)")
    p.add_argument("--max-seconds", type=float, default=600.0, help="stop early after this long (whole run)")
    p.add_argument("--profile", action="store_true",
                   help="also cProfile one full-size export and 200 person_progress calls (top functions)")
    return p.parse_args(argv)


class OutOfTime(Exception):
    """--max-seconds passed."""


# -- the data --
class Generator:
    """Makes people, accounts, ledger entries and certificates with explicit, contiguous ids."""

    FOUNDATION_CHUNKS = ([6], [3, 3], [2, 2, 2], [1.5, 1.5, 3], [3])  # the last: only half done yet
    ELECTIVE_CHUNKS = ([3], [3], [3], [1.5, 1.5])

    def __init__(self, catalog, lms_id: int, instructor_account_id: int):
        self.catalog = catalog
        self.lms_id = lms_id
        self.instructor = instructor_account_id
        self.by_group = {g.id: [m for m in catalog.modules if m.group == g.id] for g in catalog.program.groups}
        self.next_entry_id = 1
        self.next_certificate_id = 1
        self.base_time = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)

    def account_id(self, person_id: int) -> int:
        return person_id + 1  # account 1 is the instructor's

    def person(self, person_id: int):
        rng = random.Random(SEED * 1_000_003 + person_id)
        created = self.base_time + timedelta(minutes=person_id)
        account_id = self.account_id(person_id)
        person = {"id": person_id, "name": f"Member {person_id}", "email": f"member{person_id}@example.org",
                  "program_admin": False, "created_at": created}
        account = {"id": account_id, "lms_id": self.lms_id, "sub": f"sub-{person_id}",
                   "person_id": person_id, "name": person["name"], "email": person["email"],
                   "created_at": created, "last_launch_at": created}
        reversal = rng.random() < 0.35
        earn_rows = ENTRIES_PER_PERSON - (1 if reversal else 0)
        plan = []  # (module, hours, source)

        def add(module, chunks):
            for hours in chunks:
                source = "module_completion" if hours == module.credit_hours else "workshop_grade"
                plan.append((module, Decimal(str(hours)).quantize(Decimal("0.01")), source))

        for group in ("foundations", "democratized"):
            if rng.random() < 0.9:
                add(rng.choice(self.by_group[group]), rng.choice(self.FOUNDATION_CHUNKS))
        electives = list(self.by_group["specialized"])
        rng.shuffle(electives)
        while len(plan) < earn_rows:
            module = electives.pop() if electives else rng.choice(self.by_group["specialized"])
            chunks = rng.choice(self.ELECTIVE_CHUNKS)
            add(module, chunks[: earn_rows - len(plan)])
        entries = []
        t = created + timedelta(days=rng.randint(1, 30))
        for module, hours, source in plan:
            entry_id = self.next_entry_id
            self.next_entry_id += 1
            t += timedelta(days=rng.randint(1, 40), minutes=rng.randint(0, 600))
            entries.append({
                "id": entry_id, "account_id": account_id, "module_slug": module.slug, "group_id": module.group,
                "hours": hours, "source": source, "source_ref": f"{source}:{entry_id}",
                "content_version": module.content_version,
                "recorded_by_account_id": self.instructor if source == "workshop_grade" else None,
                "recorded_at": t, "reverses_entry_id": None, "reason": None,
            })
        if reversal:
            target = rng.choice(entries)
            entry_id = self.next_entry_id
            self.next_entry_id += 1
            t += timedelta(days=rng.randint(1, 10))
            entries.append({
                "id": entry_id, "account_id": account_id, "module_slug": target["module_slug"],
                "group_id": target["group_id"], "hours": -target["hours"], "source": "reversal",
                "source_ref": f"reversal:{target['id']}", "content_version": target["content_version"],
                "recorded_by_account_id": self.instructor, "recorded_at": t,
                "reverses_entry_id": target["id"], "reason": "Recorded against the wrong member",
            })
        certificate = self.certificate(person, entries, t)
        return person, account, entries, certificate

    def certificate(self, person, entries, when):
        """A certificate for a person who meets the rules (a cheap re-statement of rules.compute_progress)."""
        net: dict[str, Decimal] = {}
        for e in entries:
            net[e["module_slug"]] = net.get(e["module_slug"], Decimal(0)) + e["hours"]
        hours = {g.id: Decimal(0) for g in self.catalog.program.groups}
        complete = {g.id: 0 for g in self.catalog.program.groups}
        for slug, h in net.items():
            module = self.catalog.module(slug)
            cap = Decimal(str(module.credit_hours))
            if h <= 0:
                continue
            hours[module.group] += min(h, cap)
            complete[module.group] += h >= cap
        groups = self.catalog.program.groups
        met = all(hours[g.id] >= Decimal(str(g.required_hours)) and complete[g.id] >= g.min_distinct_modules
                  for g in groups)
        counted = {g.id: min(hours[g.id], Decimal(str(g.required_hours))) for g in groups}
        total = sum(counted.values(), Decimal(0))
        if not met or total < Decimal(str(self.catalog.program.total_hours)):
            return None
        cert_id = self.next_certificate_id
        self.next_certificate_id += 1
        return {"id": cert_id, "person_id": person["id"], "number": f"BC-2026-{person['id']:06d}",
                "holder_name": person["name"], "issued_at": when,
                "hours_by_group": {k: str(v) for k, v in counted.items()}, "total_hours": total,
                "status": "issued", "status_reason": None, "status_changed_at": None}


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="lti-bench-ledger-"))
        self.deadline = None
        self.stopped = None
        self.build_seconds = 0.0

    def check_time(self, what: str):
        if time.monotonic() > self.deadline:
            self.stopped = what
            raise OutOfTime(what)

    # -- setup --
    def setup(self):
        a = self.args
        if a.database_url:
            from lti_tool.config import normalise_database_url

            url = normalise_database_url(a.database_url)
            if url.startswith("postgresql"):
                prepare_postgres(a.database_url)
        else:
            url = f"sqlite:///{self.tmp / 'bench.sqlite3'}"
        self.url = url
        self.backend = sa.engine.make_url(url).get_backend_name()
        os.environ["LTI_TOOL_INSTANCE"] = str(self.tmp / "instance")  # keep the repo's instance/ untouched
        import flask_migrate

        from lti_tool import create_app
        from lti_tool.extensions import db
        from lti_tool.models import Account, Certificate, LedgerEntry, LmsIdentity, Person, Platform

        self.db = db
        self.tables = {"people": Person.__table__, "accounts": Account.__table__,
                       "ledger_entries": LedgerEntry.__table__, "certificates": Certificate.__table__}
        self.app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "TESTING": True,
                               "LOG_LEVEL": "WARNING"})
        t = time.monotonic()
        with self.app.app_context():
            logging.disable(logging.INFO)  # alembic's per-revision INFO lines (its env.py resets the loggers)
            try:
                flask_migrate.upgrade()
            finally:
                logging.disable(logging.NOTSET)
            from lti_tool.catalog import current_catalog

            self.catalog = current_catalog()
            now = datetime.now(UTC)
            with db.engine.begin() as conn:
                lms_id = conn.execute(sa.insert(LmsIdentity.__table__).values(
                    issuer="https://canvas.bench.example", client_id="", name="Bench Canvas", created_at=now)
                    .returning(LmsIdentity.__table__.c.id)).scalar_one()
                conn.execute(sa.insert(Platform.__table__).values(lms_id=lms_id,
                    name="Bench Canvas", issuer="https://canvas.bench.example", client_id="bench",
                    auth_login_url="https://canvas.bench.example/auth",
                    auth_token_url="https://canvas.bench.example/token", accept_new_deployments=False,
                    registered_by="manual", product="canvas", created_at=now))
                conn.execute(sa.insert(Account.__table__).values(
                    id=1, lms_id=lms_id, sub="bench-instructor", person_id=None,
                    name="Bench Instructor", email="instructor@example.org", created_at=now))
            db.session.remove()
        self.gen = Generator(self.catalog, lms_id, instructor_account_id=1)
        print(f"database:   {self.backend} ({self.safe_url()})")
        print(f"schema:     flask_migrate.upgrade() in {time.monotonic() - t:.1f} s")

    def safe_url(self) -> str:
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    # -- the load --
    def build(self, first: int, last: int) -> None:
        """Insert people first..last (inclusive) with their accounts, entries and certificates."""
        a = self.args
        t0 = time.monotonic()
        counts = dict.fromkeys(self.tables, 0)
        with self.app.app_context():
            engine = self.db.engine
            start = first
            while start <= last:
                if time.monotonic() > self.deadline:
                    self.build_seconds += time.monotonic() - t0
                    print(f"build:      stopped after {counts['people']:,} of people {first:,}-{last:,}")
                self.check_time(f"building people {first:,}-{last:,}")
                end = min(start + a.batch // ENTRIES_PER_PERSON - 1, last)
                rows = {name: [] for name in self.tables}
                for person_id in range(start, end + 1):
                    person, account, entries, certificate = self.gen.person(person_id)
                    rows["people"].append(person)
                    rows["accounts"].append(account)
                    rows["ledger_entries"].extend(entries)
                    if certificate:
                        rows["certificates"].append(certificate)
                with engine.begin() as conn:
                    for name in ("people", "accounts", "ledger_entries", "certificates"):
                        table_rows = rows[name]
                        for i in range(0, len(table_rows), a.batch):
                            conn.execute(sa.insert(self.tables[name]), table_rows[i:i + a.batch])
                        counts[name] += len(table_rows)
                start = end + 1
            if self.backend == "postgresql":
                with engine.begin() as conn:
                    for name in self.tables:  # as autovacuum would after a bulk load
                        conn.execute(sa.text(f"ANALYZE {name}"))
                    for name in self.tables:  # explicit ids were given: keep the sequences ahead of them
                        conn.execute(sa.text(
                            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                            f"(SELECT coalesce(max(id), 1) FROM {name}))"))
            self.db.session.remove()
        elapsed = time.monotonic() - t0
        self.build_seconds += elapsed
        print(f"build:      people {first:,}-{last:,}: {counts['people']:,} people, {counts['accounts']:,} accounts, "
              f"{counts['ledger_entries']:,} ledger entries, {counts['certificates']:,} certificates "
              f"in {elapsed:.1f} s ({counts['ledger_entries'] / max(elapsed, 1e-9):,.0f} entries/s)")

    # -- the measurements --
    def export(self, label: str, profile: bool = False):
        from lti_tool.catalog import current_catalog
        from lti_tool.services.exports import as_csv, progress_rows

        self.check_time(f"export ({label})")
        with self.app.app_context():
            self.db.session.remove()
            profiler = cProfile.Profile() if profile else None
            rows = size = 0
            t0 = time.perf_counter()
            if profiler:
                profiler.enable()
            for line in as_csv(progress_rows(current_catalog())):
                rows += 1
                size += len(line.encode("utf-8"))
            if profiler:
                profiler.disable()
            elapsed = time.perf_counter() - t0
            self.db.session.remove()
        if profiler:
            self.print_profile(profiler, f"export ({label})")
        else:
            print(f"export:     {label}: {rows - 1:,} people ({rows:,} CSV rows with header), "
                  f"{size / 1e6:.2f} MB in {elapsed:.2f} s")
        return elapsed, rows

    def person_progress(self, people: int):
        from lti_tool.services.ledger import person_progress

        a = self.args
        rng = random.Random(SEED)
        ids = [rng.randint(1, people) for _ in range(a.warmup + a.samples)]
        timings = []
        with self.app.app_context():
            self.db.session.remove()
            for i, person_id in enumerate(ids):
                if i % 50 == 0:
                    self.check_time("person_progress")
                t0 = time.perf_counter()
                progress = person_progress(person_id)
                elapsed = time.perf_counter() - t0
                self.db.session.remove()  # fresh session state for the next call (not timed)
                if i >= a.warmup:
                    timings.append(elapsed * 1000)
                assert progress.groups, person_id
        timings.sort()
        return timings

    def profile_person_progress(self, people: int):
        from lti_tool.services.ledger import person_progress

        rng = random.Random(SEED + 1)
        profiler = cProfile.Profile()
        with self.app.app_context():
            for _ in range(200):
                person_id = rng.randint(1, people)
                profiler.enable()
                person_progress(person_id)
                profiler.disable()
                self.db.session.remove()
        self.print_profile(profiler, "200 x person_progress")

    @staticmethod
    def print_profile(profiler, label: str, top: int = 18):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        print(f"\nprofile:    {label}, by total time (tottime), top {top}")
        stats.sort_stats("tottime").print_stats(top)
        lines = out.getvalue().splitlines()
        start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
        for line in lines[start - 2 if start >= 2 else 0:]:
            if line.strip():
                print("   ", line.replace(str(ROOT) + "/", "")[:200])
        print()

    def close(self):
        try:
            with self.app.app_context():
                self.db.session.remove()
                self.db.engine.dispose()
        except Exception:  # noqa: BLE001 - best effort
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.people < 2:
        print("--people must be at least 2", file=sys.stderr)
        return 2
    bench = Bench(args)
    started = time.monotonic()
    bench.deadline = started + args.max_seconds
    half = args.people // 2
    results = {}
    try:
        try:
            bench.setup()
        except Exception as exc:  # noqa: BLE001 - report and stop
            print(f"setup failed: {exc.__class__.__name__}: {exc}", file=sys.stderr)
            return 2
        try:
            bench.build(1, half)
            results["export_half"] = bench.export(f"half size ({half:,} people)")
            bench.build(half + 1, args.people)
            results["export_full"] = bench.export(f"full size ({args.people:,} people)")
            results["person"] = bench.person_progress(args.people)
            if args.profile:
                bench.export("full size", profile=True)
                bench.profile_person_progress(args.people)
        except OutOfTime as exc:
            print(f"\nSTOPPED: --max-seconds {args.max_seconds:g} passed during {exc}; reporting what was measured")
        report(args, bench, results, time.monotonic() - started)
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        bench.close()


def report(args, bench, results, wall) -> None:
    print()
    timings = results.get("person")
    checks = []
    if timings:
        p50, p95, p99 = (percentile(timings, q) for q in (0.5, 0.95, 0.99))
        print(f"person_progress ms ({len(timings)} random people of {args.people:,}, after {args.warmup} warm-up, "
              f"db.session.remove() after each): p50 {p50:.2f}  p95 {p95:.2f}  p99 {p99:.2f}  max {timings[-1]:.2f}")
        checks.append((f"one person p95 < {TARGET_PERSON_P95_MS:g} ms", p95 < TARGET_PERSON_P95_MS, f"{p95:.2f} ms"))
    else:
        checks.append((f"one person p95 < {TARGET_PERSON_P95_MS:g} ms", None, "not measured"))
    half, full = results.get("export_half"), results.get("export_full")
    if full:
        print(f"export s:   {args.people // 2:,} people {half[0]:.2f} s, {args.people:,} people {full[0]:.2f} s, "
              f"ratio {full[0] / half[0]:.2f}")
        checks.append((f"export < {TARGET_EXPORT_S:g} s", full[0] < TARGET_EXPORT_S, f"{full[0]:.2f} s"))
        ratio = full[0] / half[0]
        checks.append(("export linear (ratio ~2)", LINEAR_RATIO[0] <= ratio <= LINEAR_RATIO[1],
                       f"{ratio:.2f} (band {LINEAR_RATIO[0]:g}-{LINEAR_RATIO[1]:g})"))
    else:
        checks.append((f"export < {TARGET_EXPORT_S:g} s", None, "not measured"))
    print(f"build s:    {bench.build_seconds:.1f} s in all")
    print(f"wall time:  {wall:.1f} s ({bench.backend}, {os.cpu_count()} cores)")
    print()
    for name, passed, got in checks:
        verdict = "PASS" if passed else ("----" if passed is None else "MISS")
        print(f"  {verdict}  {name:<28} got {got}")


if __name__ == "__main__":
    sys.exit(main())
