"""Where one page's time goes: the app in-process on the bench database, signed in as a role, one path
requested N times under pyinstrument (bench/README.md, "Profile one page").

    DATABASE_URL=postgresql://.../techserv_large ENCRYPTION_KEYS=... \
        .venv/bin/python bench/profile.py --who admin /staff/tickets/ [-n 200] [--html out.html]

Prints the mean time per request without the profiler, the SQL statements (each one's mean time and how
often it runs a request), then pyinstrument's tree of a second, profiled run.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from run import PASSWORD, pick_people_and_ids  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path")
    parser.add_argument("--who", default="admin", help="a staff role, big_contact or typical_contact")
    parser.add_argument("-n", type=int, default=200, help="requests to profile (after 20 to warm up)")
    parser.add_argument("--html", help="also write pyinstrument's HTML report here")
    args = parser.parse_args()

    import os

    from pyinstrument import Profiler
    from sqlalchemy import event

    from portal import create_app
    from portal.extensions import db

    ids = pick_people_and_ids(os.environ["DATABASE_URL"])
    people = {**ids["staff"], "big_contact": ids["big_contact"], "typical_contact": ids["typical_contact"]}
    app = create_app()
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    client.post("/login", data={"email": people[args.who], "password": PASSWORD, "csrf_token": token})
    for _ in range(20):
        status = client.get(args.path).status_code
    if status not in (200, 302):
        raise SystemExit(f"{args.path} answered {status} for {args.who}")

    with app.app_context():
        engine = db.engine
    sql = {"n": 0, "seconds": 0.0}

    def before(conn, cursor, statement, parameters, context, executemany):
        context._bench_started = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany):
        sql["n"] += 1
        sql["seconds"] += time.perf_counter() - context._bench_started

    started = time.perf_counter()
    for _ in range(args.n):
        client.get(args.path)
    plain = (time.perf_counter() - started) / args.n
    by_statement: dict[str, list[float]] = {}

    def after_each(conn, cursor, statement, parameters, context, executemany):
        by_statement.setdefault(" ".join(statement.split())[:160], []).append(
            time.perf_counter() - context._bench_started)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "after_cursor_execute", after_each)
    for _ in range(args.n):
        client.get(args.path)
    event.remove(engine, "after_cursor_execute", after_each)
    print(f"{args.path} as {args.who}: {1000 * plain:.2f} ms a request without the profiler, "
          f"{sql['n'] / args.n:.1f} statements taking {1000 * sql['seconds'] / args.n:.2f} ms of it:")
    for statement, times in sorted(by_statement.items(), key=lambda item: -sum(item[1])):
        print(f"  {1000 * sum(times) / args.n:7.2f} ms  x{len(times) / args.n:.1f}  {statement}")
    profiler = Profiler(interval=0.0005)
    started = time.perf_counter()
    with profiler:
        for _ in range(args.n):
            client.get(args.path)
    elapsed = time.perf_counter() - started
    print(f"profiled: {1000 * elapsed / args.n:.2f} ms a request (the profiler's own cost included)")
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    if args.html:
        Path(args.html).write_text(profiler.output_html())


if __name__ == "__main__":
    main()
