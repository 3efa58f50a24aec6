"""IHateMoney's side of the sharing benchmark (run in bench/.venv-ihatemoney).

Settings come from bench/ihatemoney/ihatemoney.cfg (IHATEMONEY_SETTINGS_FILE_PATH), the same
file gunicorn's workers read, so this script and the server share one SQLite database.

Commands:

- ``setup --members N [--plan plan.json] --out setup.json``: create the app (IHateMoney runs its
  own Alembic migrations), one project (no currency, history as IHateMoney's default) and its
  N members through IHateMoney's models; with a plan, insert its bills (``[payer, amount in
  minor units, [owers]]``, equal split) straight into IHateMoney's ``bill`` and ``billowers``
  tables in batches (no history rows: the data that balances and settle-up read is the same).
  Writes the project id and code, the member ids, an API token and the load time.
- ``time --runs R --out times.json``: in-process time of IHateMoney's balance
  (``Project.members_stats``, what ``GET /api/projects/<id>/statistics`` returns) and settle-up
  (``Project.get_transactions_to_settle_bill()``, what the settle page shows), each run with a
  fresh session; also writes the balances (in minor units) for the cross-check.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

PROJECT = "bench"
CODE = "bench-private-code"


def setup(args: argparse.Namespace) -> None:
    from ihatemoney.models import Person, Project, db
    from ihatemoney.run import create_app
    from ihatemoney.utils import generate_password_hash

    app = create_app()
    with app.app_context():
        project = Project(
            id=PROJECT,
            name="Benchmark",
            password=generate_password_hash(CODE),
            contact_email="bench@example.com",
            default_currency="XXX",
        )
        db.session.add(project)
        people = [
            Person(name=f"member {i}", project=project, weight=1) for i in range(args.members)
        ]
        db.session.add_all(people)
        db.session.commit()
        ids = [p.id for p in people]
        token = project.generate_token()
        seconds = 0.0
        bills = 0
        if args.plan:
            plan = json.loads(Path(args.plan).read_text())
            started = time.perf_counter()
            today = datetime.date(2026, 11, 21).isoformat()
            # A raw DB-API connection: SQLAlchemy-Continuum's hooks expect ORM units of work.
            conn = db.engine.raw_connection()
            try:
                cur = conn.cursor()
                batch = 2000
                rows = plan["expenses"]
                for start in range(0, len(rows), batch):
                    chunk = rows[start : start + batch]
                    bill_rows = []
                    ower_rows = []
                    for n, (payer, amount, owers) in enumerate(chunk, start=start + 1):
                        value = amount / 100
                        bill_rows.append(
                            (n, ids[payer], value, value, today, today, f"expense {n}")
                        )
                        ower_rows.extend((n, ids[o]) for o in owers)
                    cur.executemany(
                        "INSERT INTO bill (id, payer_id, amount, converted_amount, date,"
                        " creation_date, what, bill_type, external_link, original_currency)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, 'EXPENSE', '', 'XXX')",
                        bill_rows,
                    )
                    cur.executemany(
                        "INSERT INTO billowers (bill_id, person_id) VALUES (?, ?)", ower_rows
                    )
                    conn.commit()
                    bills += len(chunk)
            finally:
                conn.close()
            seconds = time.perf_counter() - started
    Path(args.out).write_text(
        json.dumps(
            {
                "project": PROJECT,
                "code": CODE,
                "members": ids,
                "token": token,
                "bills": bills,
                "load_seconds": seconds,
            }
        )
    )


def time_compute(args: argparse.Namespace) -> None:
    from ihatemoney.models import Project, db
    from ihatemoney.run import create_app

    app = create_app()
    balance_times: list[float] = []
    settle_times: list[float] = []
    balances: dict[str, int] = {}
    payments = 0
    with app.app_context():
        for _ in range(args.runs):
            db.session.remove()
            project = db.session.get(Project, PROJECT)
            t0 = time.perf_counter()
            stats = project.members_stats
            t1 = time.perf_counter()
            plan = project.get_transactions_to_settle_bill()
            t2 = time.perf_counter()
            balance_times.append(t1 - t0)
            settle_times.append(t2 - t1)
            balances = {str(s["member"].id): round(s["balance"] * 100) for s in stats}
            payments = len(plan)
    Path(args.out).write_text(
        json.dumps(
            {
                "balance_seconds": balance_times,
                "settle_seconds": settle_times,
                "balances": balances,
                "payments": payments,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("setup")
    p.add_argument("--members", type=int, required=True)
    p.add_argument("--plan")
    p.add_argument("--out", required=True)
    p.set_defaults(fn=setup)
    t = sub.add_parser("time")
    t.add_argument("--runs", type=int, default=5)
    t.add_argument("--out", required=True)
    t.set_defaults(fn=time_compute)
    args = parser.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
