"""Member page bench: a section page, the catalog and a full ledger's progress page, against a bare Flask page.

    python bench/pages.py --requests 600                    # fresh SQLite file in a temp dir
    python bench/pages.py --database-url postgresql://postgres@127.0.0.1:5432/test_bench   # drops schema public!

Members read a dozen section pages per launch, so these pages are most of the traffic. Sets up the tool as
bench/launch.py does, launches one member, records hours for every module of the catalog (a full ledger), and
counts each page's SQL statements in-process. Then, each under gunicorn with the same workers x threads, it
drives --requests GETs per page from --concurrency keep-alive clients: first a bare Flask app rendering a template
whose output is the same size as the tool's page (bench/baseline_app.py), then the tool. The member's session
cookie is shared by the clients. Prints pages/s, p50, p99, server CPU per page and the ratio (target >= 0.5x).

    python bench/pages.py --in-process [--database-url ...]

serves the same pages in this process through Flask's test client instead (no HTTP server, no baseline) and
prints the CPU per GET: steadier than the served figures on a shared machine, so two releases can be compared
run against run. It includes the test client's own work.
"""
import argparse
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import LeanClient, children, percentile, process_tree_cpu  # noqa: E402
from bench.launch import BASELINE_APP, TOOL_APP, Bench, start_gunicorn, stop_gunicorn  # noqa: E402
from tests.platform import state_and_nonce  # noqa: E402

TARGET_RATIO = 0.5
FLOOR_PAGE_APP = "bench.floor_app:create_page_app()"
MEMBER = "page-member"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--requests", type=int, default=600, help="measured GETs per page and server")
    p.add_argument("--warmup", type=int, default=50, help="GETs per page before measuring")
    p.add_argument("--concurrency", type=int, default=16, help="client threads")
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (both servers)")
    p.add_argument("--threads", type=int, default=4, help="gthread threads per worker (both servers)")
    p.add_argument("--database-url", default=None,
                   help="default: fresh SQLite in a temp dir; a postgresql:// URL has its schema public "
                        "DROPPED and recreated")
    p.add_argument("--show-server-log", action="store_true", help="let gunicorn's stderr through")
    p.add_argument("--floor", action="store_true",
                   help="also measure the floor: each page's own SQL (recorded in-process) on the raw driver and the "
                        "baseline's template at the page's size (bench/floor_app.create_page_app)")
    p.add_argument("--in-process", action="store_true",
                   help="serve the pages in this process through Flask's test client and print CPU per GET only")
    return p.parse_args(argv)


class PageBench(Bench):
    def __init__(self, args):
        args.users, args.max_seconds = 1, 120.0
        super().__init__(args)
        self.pages: dict[str, str] = {}  # name -> path under /l/<launch>/
        self.sizes: dict[str, int] = {}
        self.page_statements: dict[str, int] = {}
        #: Each page's statements with their parameters, as the driver got them (for the floor).
        self.page_sql: dict[str, list] = {}

    def launch_in_process(self, client) -> str:
        """Launch the member through a Flask test client; return the launch id the page URLs need."""
        r = client.get(self.login_path(), base_url=self.base_url)
        state, nonce = state_and_nonce(r.headers["Location"])
        r = client.post("/lti/launch", base_url=self.base_url,
                        data={"id_token": self.launch_request(0, nonce, prefix=MEMBER), "state": state})
        if r.status_code != 303:
            raise RuntimeError(f"in-process launch HTTP {r.status_code}")
        launch_id = r.headers["Location"].rstrip("/").split("/l/", 1)[1].split("/")[0]
        return launch_id

    def count_statements(self, app):
        """Launch the member in-process, fill their ledger, and count each page's statements and bytes."""
        import sqlalchemy as sa

        from lti_tool.catalog import current_catalog
        from lti_tool.extensions import db
        from lti_tool.models.lti import Launch
        from lti_tool.services import ledger

        client = app.test_client()
        launch_id = self.launch_in_process(client)
        with app.app_context():
            account_id = db.session.get(Launch, launch_id).account_id
            catalog = current_catalog()
            for module in catalog.modules:  # a full ledger: every module's hours
                ledger.record_hours(account_id=account_id, module_slug=module.slug,
                                    hours=Decimal(str(module.credit_hours)), source="module_completion",
                                    source_ref=f"bench:{module.slug}", content_version=module.content_version)
            db.session.commit()
            first = catalog.modules[0]
            self.pages = {"section": f"modules/{first.slug}/sections/{first.sections[0].slug}",
                          "catalog": "catalog", "progress": "progress"}
            engine = db.engine
        count = [0]
        recorded: list = []

        def counter(_conn, _cursor, statement, parameters, _context, _executemany):
            count[0] += 1
            recorded.append((statement, parameters))

        sa.event.listen(engine, "before_cursor_execute", counter)
        try:
            for name, path in self.pages.items():
                client.get(f"/l/{launch_id}/{path}", base_url=self.base_url)  # first visit writes; count the next
                count[0] = 0
                recorded.clear()
                r = client.get(f"/l/{launch_id}/{path}", base_url=self.base_url)
                if r.status_code != 200:
                    raise RuntimeError(f"in-process {name} page HTTP {r.status_code}")
                self.page_statements[name] = count[0]
                self.page_sql[name] = list(recorded)
                self.sizes[name] = len(r.data)
        finally:
            sa.event.remove(engine, "before_cursor_execute", counter)

    def member_session(self) -> tuple[dict, str]:
        """A launch over HTTP for the member: the cookies and the launch id the page URLs need."""
        client = LeanClient("127.0.0.1", self.port)
        try:
            status, location, _ = client.request("GET", self.login_path())
            state, nonce = state_and_nonce(location)
            from urllib.parse import urlencode

            status, location, _ = client.request("POST", "/lti/launch", urlencode({
                "id_token": self.launch_request(0, nonce, prefix=MEMBER), "state": state}))
            if status != 303:
                raise RuntimeError(f"launch over HTTP: {status}")
            return dict(client.cookies), location.rstrip("/").split("/l/", 1)[1].split("/")[0]
        finally:
            client.close()

    def drive_page(self, path: str, cookies: dict, count: int) -> tuple[list, int]:
        lock = threading.Lock()
        left = [count]
        times: list[float] = []
        errors = [0]

        def client_thread():
            client = LeanClient("127.0.0.1", self.port)
            client.cookies.update(cookies)
            try:
                while True:
                    with lock:
                        if left[0] <= 0:
                            return
                        left[0] -= 1
                    t0 = time.perf_counter()
                    status, _, _ = client.request("GET", path)
                    elapsed = (time.perf_counter() - t0) * 1000
                    with lock:
                        if status == 200:
                            times.append(elapsed)
                        else:
                            errors[0] += 1
            finally:
                client.close()

        threads = [threading.Thread(target=client_thread, daemon=True) for _ in range(self.args.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return times, errors[0]

    def floor_env(self) -> dict:
        import pickle

        path = self.tmp / "floor_pages.pickle"
        path.write_bytes(pickle.dumps({page: (self.page_sql[page], self.sizes[page]) for page in self.pages}))
        return {**self.env(), "FLOOR_DATABASE_URL": self.database_url, "FLOOR_PAGES": str(path)}

    def measure_pages(self, name: str, app_spec: str) -> dict:
        a = self.args
        env = self.floor_env() if name == "floor" else self.env()
        server, log = start_gunicorn(app_spec, self.port, a, env, self.tmp / f"{name}.log")
        self.servers.append(server)
        results = {}
        try:
            if name == "tool":
                cookies, launch_id = self.member_session()
                paths = {page: f"/l/{launch_id}/{path}" for page, path in self.pages.items()}
            elif name == "floor":
                client = LeanClient("127.0.0.1", self.port)
                client.request("GET", "/floor/session")
                cookies, paths = dict(client.cookies), {page: f"/floor/page/{page}" for page in self.pages}
                client.close()
            else:
                cookies, paths = {}, {page: f"/page/{self.sizes[page]}" for page in self.pages}
            procs = [server.pid, *children(server.pid)]
            for page, path in paths.items():
                self.drive_page(path, cookies, a.warmup)
                cpu0 = process_tree_cpu(procs)
                t0 = time.perf_counter()
                times, errors = self.drive_page(path, cookies, a.requests)
                wall = time.perf_counter() - t0
                cpu = process_tree_cpu(procs) - cpu0
                times.sort()
                results[page] = {"rate": len(times) / wall, "p50": percentile(times, .5),
                                 "p99": percentile(times, .99), "cpu": cpu / max(len(times), 1) * 1000,
                                 "errors": errors}
        finally:
            stop_gunicorn(server)
            if log:
                log.close()
        return results

    def measure_in_process(self) -> dict[str, float]:
        """CPU per GET of each page, served in this process by a fresh app through Flask's test client."""
        from lti_tool import create_app
        from lti_tool.extensions import db

        app = create_app()
        client = app.test_client()
        launch_id = self.launch_in_process(client)
        results = {}
        for page, path in self.pages.items():
            url = f"/l/{launch_id}/{path}"
            for _ in range(self.args.warmup):
                client.get(url, base_url=self.base_url)
            cpu0 = time.process_time()
            for _ in range(self.args.requests):
                if (status := client.get(url, base_url=self.base_url).status_code) != 200:
                    raise RuntimeError(f"in-process {page} page HTTP {status}")
            results[page] = (time.process_time() - cpu0) / self.args.requests * 1000
        with app.app_context():
            db.engine.dispose()
        return results

    def report_pages(self, baseline: dict, tool: dict, floor: dict | None = None) -> int:
        a = self.args
        backend = "postgresql" if self.database_url.startswith("postgres") else "sqlite"
        print()
        print(f"config:  {backend}; both servers gunicorn {a.workers} workers x {a.threads} threads (gthread); "
              f"{a.concurrency} keep-alive client threads on the same cores; {a.requests} GETs per page")
        print("         absolute figures move with the machine's other load; compare the ratio to the baseline")
        print()
        print(f"{'page':<9} {'bytes':>7} {'SQL':>4} {'tool/s':>8} {'p50':>7} {'p99':>7} {'CPU/page':>9} "
              f"{'baseline/s':>10} {'p50':>7} {'CPU/page':>9} {'ratio':>6}")
        errors = 0
        for page in self.pages:
            t, b = tool[page], baseline[page]
            ratio = t["rate"] / b["rate"] if b["rate"] else float("nan")
            errors += t["errors"] + b["errors"]
            print(f"{page:<9} {self.sizes[page]:>7} {self.page_statements[page]:>4} {t['rate']:>8.1f} "
                  f"{t['p50']:>5.1f}ms {t['p99']:>5.1f}ms {t['cpu']:>6.2f} ms {b['rate']:>10.1f} {b['p50']:>5.1f}ms "
                  f"{b['cpu']:>6.2f} ms {ratio:>5.2f}x   {'PASS' if ratio >= TARGET_RATIO else 'MISS'} "
                  f">= {TARGET_RATIO}x" + (f"  ({t['errors']} errors)" if t["errors"] else ""))
        print("(SQL: statements the tool runs for one GET of the page, counted in-process; the section page "
              "records the visit)")
        if floor:
            print()
            print("floor: the page's own SQL on the raw driver and the baseline's template at the page's size "
                  "(bench/floor_app.create_page_app)")
            print(f"{'page':<9} {'floor/s':>8} {'p50':>7} {'CPU/page':>9} {'floor/baseline':>15} {'tool/floor':>11}")
            for page in self.pages:
                f, t, b = floor[page], tool[page], baseline[page]
                errors += f["errors"]
                print(f"{page:<9} {f['rate']:>8.1f} {f['p50']:>5.1f}ms {f['cpu']:>6.2f} ms "
                      f"{f['rate'] / b['rate'] if b['rate'] else float('nan'):>14.2f}x "
                      f"{t['rate'] / f['rate'] if f['rate'] else float('nan'):>10.2f}x"
                      + (f"  ({f['errors']} errors)" if f["errors"] else ""))
        return 1 if errors else 0


def main(argv=None) -> int:
    args = parse_args(argv)
    bench = PageBench(args)
    try:
        bench.setup()
        if args.in_process:
            backend = "postgresql" if bench.database_url.startswith("postgres") else "sqlite"
            print(f"\nin process ({backend}, Flask test client, {args.requests} GETs per page after {args.warmup}):")
            for page, cpu in bench.measure_in_process().items():
                print(f"{page:<9} {bench.sizes[page]:>7} bytes {bench.page_statements[page]:>3} SQL  "
                      f"{cpu:>6.2f} ms CPU per GET")
            return 0
        baseline = bench.measure_pages("baseline", BASELINE_APP)
        floor = bench.measure_pages("floor", FLOOR_PAGE_APP) if args.floor else None
        tool = bench.measure_pages("tool", TOOL_APP)
        return bench.report_pages(baseline, tool, floor)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        bench.close()


if __name__ == "__main__":
    sys.exit(main())
