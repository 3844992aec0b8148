"""What the benchmark scripts share: a fresh PostgreSQL schema to measure on, and percentiles."""
import sqlalchemy as sa


def percentile(sorted_values, q: float) -> float:
    """Return the q-th quantile (0..1) of already sorted values, interpolated."""
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def prepare_postgres(url: str) -> None:
    """Create the database if missing (from the `postgres` database), then drop and recreate schema public."""
    import psycopg

    u = sa.engine.make_url(url)
    if not u.database:
        raise RuntimeError("the PostgreSQL URL must name a database")
    conninfo = {k: v for k, v in dict(host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username,
                                      password=u.password).items() if v is not None}
    with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (u.database,)).fetchone() is None:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(u.database)))
            print(f"database: created {u.database}")
    with psycopg.connect(dbname=u.database, autocommit=True, **conninfo) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


def database_backends(url: str) -> list[int]:
    """The PostgreSQL server processes serving connections to this URL's database, when the server runs on this
    machine (Linux /proc; their command line names the database); empty for SQLite or a remote server."""
    from pathlib import Path

    u = sa.engine.make_url(url)
    if not u.drivername.startswith("postgres") or (u.host or "127.0.0.1") not in ("127.0.0.1", "localhost", "::1"):
        return []
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if command.startswith("postgres: ") and f" {u.database} " in command:
            pids.append(int(proc.name))
    return pids


class LeanClient:
    """One keep-alive HTTP/1.1 connection and its cookies: http.client, no redirects, no session machinery.

    `requests` costs the benchmark 5-6 ms of CPU per launch (it parsed more than the server did); this costs
    about 1 ms, so on a shared 2-core machine the load generator takes little from the server it measures.
    """

    def __init__(self, host: str, port: int, timeout: float = 30.0):
        import http.client

        self._connect = lambda: http.client.HTTPConnection(host, port, timeout=timeout)
        self.conn = self._connect()
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str | None, bytes]:
        """Send one request; return (status, Location, body). Set-Cookie values are kept for the next ones."""
        import http.client

        headers = {"Connection": "keep-alive"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # the server closed an idle keep-alive connection: one retry on a new one
                self.conn.close()
                self.conn = self._connect()
                if attempt:
                    raise
        for value in response.headers.get_all("Set-Cookie") or ():
            pair = value.split(";", 1)[0]
            name, _, val = pair.partition("=")
            if "max-age=0" in value.lower() or "expires=thu, 01 jan 1970" in value.lower():
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = val.strip()
        return response.status, response.headers.get("Location"), data

    def close(self) -> None:
        self.conn.close()


def process_tree_cpu(pids) -> float:
    """utime+stime in seconds summed over processes (Linux /proc); a process that is gone counts 0."""
    import os
    from pathlib import Path

    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def children(pid: int) -> list[int]:
    from pathlib import Path

    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
