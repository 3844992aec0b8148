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
