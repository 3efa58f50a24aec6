"""Sharing benchmark (issue 4): pure functions, the database-backed figures, and IHateMoney.

Pure (no database):

- simplify: ``simplify_debts`` on 15 non-zero balances (the exact search's limit; random large
  amounts, and small amounts with many zero-sum subsets) and on 10,000 balances (greedy);
- parse: ``parse_expense`` latency (p50, p99) over a fixed set of phrases.

Against IHateMoney (PyPI ``ihatemoney``, pinned in bench/ihatemoney/requirements.txt, installed
by this benchmark into bench/.venv-ihatemoney and served by gunicorn on 127.0.0.1), same seed,
same work for both:

- create: ``POST`` expenses over HTTP, 10 members, ``clients`` concurrent httpx clients
  (threads); bills/s and p50/p99. Potluck: ``POST /v1/groups/{id}/expenses`` (JWT);
  IHateMoney: ``POST /api/projects/<id>/bills`` (its API token). The same number of server
  processes for both (``workers``: gunicorn sync workers / uvicorn workers).
- settle: balances and settle-up for 50 members x 20,000 expenses, loaded fast (Potluck:
  ``potluck_bulk_load``, expense rows and one ``ledger.create_transfers`` per 2,000 expenses,
  or ``sharing.create_expense`` per expense with ``settle_loader="service"``; IHateMoney: bulk
  INSERT into its ``bill``/``billowers`` tables by bench/ihatemoney/driver.py), then timed
  over HTTP (Potluck: ``GET /v1/groups/{id}/balances`` + ``GET .../settle-up?simplify=true``;
  IHateMoney: ``GET /api/projects/<id>/statistics`` + its settle page ``/<id>/settle_bills``)
  and in-process. Both systems' balances are compared with the plan's to the minor unit (the
  amounts split evenly, so neither rounds), and Potluck's ledger is audited.

Potluck only: balances + settle-up for 200 members x 100,000 expenses (load time stated).

``potluck bench sharing`` (``bench/run_sharing.sh``) prints them; figures in docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

from potluck.benchmarks import ledger as lb
from potluck.db import Database, make_engine
from potluck.nlp.parser import MemberRef, parse_expense
from potluck.sharing.simplify import simplify_debts

MEMBERS = [
    MemberRef("mbr_alex", "Alex Kim", "alex@x.com"),
    MemberRef("mbr_bob", "Bob Smith", "bob@x.com"),
    MemberRef("mbr_ann", "Ann Lee", "ann@x.com"),
    MemberRef("mbr_carl", "Carl Diaz", "carl@x.com"),
]
PHRASES = [
    "I paid 90 for dinner with Bob and Ann, Bob had wine for 20",
    "Bob paid 45.50 for the taxi, split evenly",
    "groceries 62,40 € split between me and Ann",
    "Ann paid $120 for the hotel, Carl pays double",
    "I paid 300 for rent, everyone",
    "lunch 48 with all but Carl",
    "Carl paid 75 for concert tickets, Bob owes 30%",
    "I paid 1.234,56 EUR for the flights, split evenly",
    "Bob paid 60 for pizza yesterday with Ann and me",
    "taxi 23 paid by Ann for me and Bob",
    "I paid 40 for drinks, Bob had the steak for 25 and the rest evenly",
    "Ann paid 90 for groceries on 3 May, split 2:1:1 between Ann, Bob and me",
]


def _timed(fn: Callable[[], Any], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)


def _balances(rng: random.Random, n: int, low: int, high: int) -> dict[str, int]:
    values = [rng.choice((-1, 1)) * rng.randint(low, high) for _ in range(n - 1)]
    values.append(-sum(values))
    return {f"p{i:05d}": v for i, v in enumerate(values)}


def run_pure(*, seed: int = 15, runs: int = 20) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    cases = [
        ("simplify, 15 non-zero balances, amounts up to 10^6", _balances(rng, 15, 1, 10**6)),
        ("simplify, 15 non-zero balances, amounts 1..7", _balances(rng, 15, 1, 7)),
        ("simplify, 10,000 balances", _balances(rng, 10_000, 1, 10**7)),
    ]
    for name, balances in cases:
        times = _timed(partial(simplify_debts, balances), runs)
        payments = len(simplify_debts(balances))
        rows.append(
            {
                "scenario": name,
                "p50_ms": round(statistics.median(times) * 1000, 2),
                "max_ms": round(times[-1] * 1000, 2),
                "note": f"{payments} payments",
            }
        )
    today = date(2026, 11, 21)
    latencies: list[float] = []
    for _ in range(runs):
        for text in PHRASES:
            start = time.perf_counter()
            parse_expense(text, members=MEMBERS, me="mbr_alex", today=today, currency="EUR")
            latencies.append(time.perf_counter() - start)
    latencies.sort()
    rows.append(
        {
            "scenario": f"parse, {len(PHRASES)} phrases × {runs}",
            "p50_ms": round(statistics.median(latencies) * 1000, 3),
            "max_ms": round(latencies[-1] * 1000, 3),
            "note": f"p99 {latencies[int(len(latencies) * 0.99) - 1] * 1000:.3f} ms",
        }
    )
    return rows


# ---------------------------------------------------------------- the shared workload

IHM_DIR = lb.BENCH_DIR / "ihatemoney"
IHM_VENV = lb.BENCH_DIR / ".venv-ihatemoney"
CURRENCY = "EUR"
TODAY = date(2026, 11, 21)


@dataclass(frozen=True)
class ExpensePlan:
    """Expenses from a seed, the same for every system: (payer, amount, owers), member indexes.

    Each amount is a multiple of its number of owers, so an equal split is exact in both
    systems (IHateMoney keeps floats, Potluck minor units) and their balances can be compared
    to the minor unit.
    """

    members: int
    expenses: list[tuple[int, int, tuple[int, ...]]]

    def to_json(self) -> dict[str, Any]:
        return {"members": self.members, "expenses": [[p, a, list(o)] for p, a, o in self.expenses]}

    def balances(self) -> list[int]:
        out = [0] * self.members
        for payer, amount, owers in self.expenses:
            out[payer] += amount
            for o in owers:
                out[o] -= amount // len(owers)
        return out


def make_expense_plan(
    *, members: int, expenses: int, seed: int, max_owers: int = 10
) -> ExpensePlan:
    rng = random.Random(seed)
    rows = []
    for _ in range(expenses):
        k = rng.randint(2, min(max_owers, members))
        owers = tuple(sorted(rng.sample(range(members), k)))
        rows.append((rng.randrange(members), k * rng.randint(50, 5_000), owers))
    return ExpensePlan(members, rows)


@dataclass
class Row:
    """One measured figure."""

    system: str  # potluck | ihatemoney
    backend: str  # sqlite | postgresql
    scenario: str
    operations: int
    seconds: float
    per_second: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    note: str = ""
    # The machine's 1-minute load average when the figure was taken (2 cores, shared).
    load_1m: float = field(default_factory=lambda: round(os.getloadavg()[0], 1))


@dataclass
class Target:
    name: str
    wanted: str
    measured: str
    ok: bool | None  # None: not measured


@dataclass
class Report:
    figures: list[Row] = field(default_factory=list)
    pure: list[dict[str, Any]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def find(self, system: str, backend: str, scenario: str) -> Row | None:
        for r in self.figures:
            if (r.system, r.backend, r.scenario) == (system, backend, scenario):
                return r
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "options": self.options,
            "figures": [asdict(r) for r in self.figures],
            "pure": self.pure,
            "targets": [asdict(t) for t in self.targets],
            "checks": self.checks,
            "skipped": self.skipped,
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def _latency_row(
    system: str,
    backend: str,
    scenario: str,
    times: list[float],
    *,
    note: str = "",
    errors: int = 0,
) -> Row:
    times = sorted(times)
    return Row(
        system=system,
        backend=backend,
        scenario=scenario,
        operations=len(times),
        seconds=round(sum(times), 4),
        p50_ms=_ms(lb.percentile(times, 50)),
        p99_ms=_ms(lb.percentile(times, 99)),
        errors=errors,
        note=note,
    )


# ---------------------------------------------------------------- Potluck


@dataclass
class PotluckGroup:
    user_id: str
    token: str
    group_id: str
    member_ids: list[str]  # by plan index
    load_seconds: float = 0.0


def _app(url: str) -> Any:
    from potluck.bootstrap import bootstrap
    from potluck.config import Settings

    return bootstrap(Settings(database_url=url, log_json=False))


def potluck_group(
    url: str,
    plan: ExpensePlan,
    *,
    batch: int = 500,
    progress: lb.Progress | None = None,
    label: str = "",
) -> PotluckGroup:
    """A user, a group of ``plan.members`` members and the plan's expenses (through
    ``sharing.create_expense``, ``batch`` expenses per transaction)."""
    from potluck.identity import tokens
    from potluck.identity.service import register_user, signing_key
    from potluck.sharing import service as sharing
    from potluck.splits.expense import ExpenseSplit, Share

    progress = progress or lb.SilentProgress()
    app = _app(url)
    try:
        now = datetime.now(UTC)
        user = register_user(
            app,
            email=f"owner-{secrets.token_hex(4)}@bench.example",
            password=secrets.token_urlsafe(12),
            name="Owner",
        )
        token = tokens.encode_access_token(
            key=signing_key(app), user_id=user.id, now=now, ttl_seconds=6 * 3600
        )
        emails = [f"member{i}@bench.example" for i in range(1, plan.members)]
        with app.db.transaction() as s:
            group = sharing.create_group(
                s, user_id=user.id, name="Bench", currency=CURRENCY, emails=emails, now=now
            )
        members = [m.id for m in group.members]
        if not plan.expenses:
            return PotluckGroup(user.id, token, group.id, members)
        advance = progress.start(
            f"{label}potluck: loading {len(plan.expenses):,} expenses "
            f"({plan.members} members, batches of {batch})",
            len(plan.expenses),
        )
        started = time.perf_counter()
        for start in range(0, len(plan.expenses), batch):
            chunk = plan.expenses[start : start + batch]
            with app.db.transaction() as s:
                for n, (payer, amount, owers) in enumerate(chunk, start=start + 1):
                    sharing.create_expense(
                        s,
                        user_id=user.id,
                        group_id=group.id,
                        description=f"expense {n}",
                        amount=amount,
                        date=TODAY,
                        paid_by=[(members[payer], amount)],
                        split=ExpenseSplit("equal", tuple(Share(members[o]) for o in owers)),
                        now=now,
                    )
            advance(len(chunk))
        load_seconds = time.perf_counter() - started
    finally:
        app.db.dispose()
    return PotluckGroup(user.id, token, group.id, members, load_seconds)


def potluck_bulk_load(
    url: str,
    group: PotluckGroup,
    plan: ExpensePlan,
    *,
    batch: int = 2_000,
    progress: lb.Progress | None = None,
    label: str = "",
) -> float:
    """The plan's expenses without the per-expense service path: each batch of ``batch``
    expenses is one transaction with the expense rows (one multi-row INSERT, the same
    columns and JSON as ``create_expense`` writes) and ONE ``ledger.create_transfers`` call
    with exactly the transfers ``create_expense`` posts (client ids ``<exp>-v1-p0`` /
    ``-o<i>``, codes ``iou_paid`` / ``iou_owed``). Left out: the per-expense history row,
    activity row and ``expense.created`` event. Returns the load time in seconds."""
    from sqlalchemy import insert, select

    from potluck.ids import new_id
    from potluck.ledger import service as ledger
    from potluck.sharing import service as sharing
    from potluck.sharing.models import Expense, SharingGroup, SharingMember
    from potluck.splits.expense import ExpenseSplit, Share

    progress = progress or lb.SilentProgress()
    db = Database(make_engine(url, pool_size=1))
    try:
        with db.read() as s:
            clearing = s.scalar(
                select(SharingGroup.expenses_account_id).where(SharingGroup.id == group.group_id)
            )
            accounts = dict(
                s.execute(
                    select(SharingMember.id, SharingMember.account_id).where(
                        SharingMember.group_id == group.group_id
                    )
                ).all()
            )
        assert clearing is not None
        scope = sharing.group_scope(group.group_id)
        m = group.member_ids
        now = datetime.now(UTC)
        advance = progress.start(
            f"{label}potluck: bulk-loading {len(plan.expenses):,} expenses "
            f"({plan.members} members, batches of {batch})",
            len(plan.expenses),
        )
        started = time.perf_counter()
        for start in range(0, len(plan.expenses), batch):
            chunk = plan.expenses[start : start + batch]
            rows: list[dict[str, Any]] = []
            ops: list[ledger.Operation] = []
            for n, (payer, amount, owers) in enumerate(chunk, start=start + 1):
                eid = new_id("exp")
                share = amount // len(owers)
                owed: list[tuple[str, int]] = [(m[o], share) for o in owers]
                split = ExpenseSplit("equal", tuple(Share(m[o]) for o in owers))
                rows.append(
                    {
                        "id": eid,
                        "group_id": group.group_id,
                        "version": 1,
                        "posted_version": 1,
                        "description": f"expense {n}",
                        "amount": amount,
                        "currency": CURRENCY,
                        "date": TODAY,
                        "category": "general",
                        "notes": "",
                        "paid_by": [[m[payer], amount]],
                        "split": sharing.split_to_doc(split),
                        "owed": [[mid, v] for mid, v in owed],
                        "created_by": group.user_id,
                        "created_at": now,
                        "updated_at": now,
                        "deleted_at": None,
                    }
                )
                ops.append(
                    ledger.NewTransfer(
                        clearing,
                        accounts[m[payer]],
                        amount,
                        client_id=f"{eid}-v1-p0",
                        currency=CURRENCY,
                        code="iou_paid",
                    )
                )
                ops.extend(
                    ledger.NewTransfer(
                        accounts[member],
                        clearing,
                        value,
                        client_id=f"{eid}-v1-o{i}",
                        currency=CURRENCY,
                        code="iou_owed",
                    )
                    for i, (member, value) in enumerate(owed)
                )
            with db.transaction() as s:
                s.execute(insert(Expense), rows)
                ledger.create_transfers(s, ops, now=now, scope=scope)
            advance(len(chunk))
        return time.perf_counter() - started
    finally:
        db.dispose()


def potluck_compute_times(
    url: str, group: PotluckGroup, *, runs: int
) -> tuple[list[float], list[float], dict[str, int], int]:
    """In-process: ``group_balances`` and ``settle_up(simplify=True)``, each in its own read."""
    from potluck.sharing import service as sharing

    app = _app(url)
    balance_times, settle_times = [], []
    balances: dict[str, int] = {}
    payments = 0
    try:
        for _ in range(runs):
            t0 = time.perf_counter()
            with app.db.read() as s:
                rows = sharing.group_balances(s, group.group_id, user_id=group.user_id)
            t1 = time.perf_counter()
            with app.db.read() as s:
                plan = sharing.settle_up(s, group.group_id, user_id=group.user_id, simplify=True)
            t2 = time.perf_counter()
            balance_times.append(t1 - t0)
            settle_times.append(t2 - t1)
            balances = {b.member.id: b.balance for b in rows}
            payments = len(plan)
    finally:
        app.db.dispose()
    return balance_times, settle_times, balances, payments


@contextlib.contextmanager
def potluck_server(
    url: str, *, port: int, workers: int, settings: Mapping[str, str] | None = None
) -> Iterator[str]:
    """``potluck serve --workers N`` on 127.0.0.1:<port> (embedded relay), with ``settings``
    (``POTLUCK_*`` environment variables) on top of this process's; yields the base URL."""
    env = dict(os.environ, POTLUCK_DATABASE_URL=url, POTLUCK_LOG_LEVEL="WARNING")
    env |= settings or {}
    cmd = [
        sys.executable,
        "-c",
        "from potluck.cli import main; main()",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(proc, base + "/healthz", "potluck serve")
        yield base
    finally:
        _stop(proc)


def _wait_until_up(proc: subprocess.Popen[bytes], url: str, what: str) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"{what} exited ({proc.returncode}): {err[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer {url} within 60 s")
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------- IHateMoney


def ensure_ihatemoney_venv(progress: lb.Progress) -> Path:
    """Create bench/.venv-ihatemoney with bench/ihatemoney/requirements.txt (once)."""
    python = IHM_VENV / "bin" / "python"
    stamp = IHM_VENV / ".installed"
    requirements = IHM_DIR / "requirements.txt"
    wanted = requirements.read_text()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    base = shutil.which("python3.11") or sys.executable
    progress.log(f"creating {IHM_VENV} from {requirements}")
    advance = progress.start("installing ihatemoney and gunicorn into bench/.venv-ihatemoney", 2)
    subprocess.run([base, "-m", "venv", str(IHM_VENV)], check=True)  # noqa: S603
    advance(1)
    subprocess.run(  # noqa: S603
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "-r",
            str(requirements),
        ],
        check=True,
    )
    advance(1)
    stamp.write_text(wanted)
    return python


@dataclass
class IhmSite:
    """One IHateMoney installation: a temporary directory with its SQLite file."""

    python: Path
    env: dict[str, str]
    project: str = ""
    code: str = ""
    token: str = ""
    members: list[int] = field(default_factory=list)
    load_seconds: float = 0.0

    def driver(self, *args: str) -> dict[str, Any]:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
            path = Path(out.name)
        try:
            proc = subprocess.run(  # noqa: S603 - the venv's python and our own script
                [str(self.python), str(IHM_DIR / "driver.py"), *args, "--out", str(path)],
                env=self.env,
                cwd=IHM_DIR,
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"ihatemoney driver {args[0]} failed: {proc.stderr[-3000:]}")
            result: dict[str, Any] = json.loads(path.read_text())
            return result
        finally:
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def ihatemoney_site(python: Path, plan: ExpensePlan | None, members: int) -> Iterator[IhmSite]:
    with tempfile.TemporaryDirectory(prefix="potluck-ihm-") as tmp:
        env = dict(
            os.environ,
            IHATEMONEY_SETTINGS_FILE_PATH=str(IHM_DIR / "ihatemoney.cfg"),
            IHM_BENCH_DATABASE_URI=f"sqlite:///{tmp}/ihatemoney.db",
            IHM_BENCH_SECRET_KEY=secrets.token_urlsafe(32),
            PYTHONWARNINGS="ignore",
        )
        site = IhmSite(python, env)
        args = ["setup", "--members", str(members)]
        if plan is not None:
            plan_path = Path(tmp) / "plan.json"
            plan_path.write_text(json.dumps(plan.to_json()))
            args += ["--plan", str(plan_path)]
        info = site.driver(*args)
        site.project, site.code, site.token = info["project"], info["code"], info["token"]
        site.members = info["members"]
        site.load_seconds = info["load_seconds"]
        yield site


@contextlib.contextmanager
def ihatemoney_server(site: IhmSite, *, port: int, workers: int) -> Iterator[str]:
    """gunicorn (sync workers) serving ``ihatemoney.wsgi`` on 127.0.0.1:<port>."""
    cmd = [
        str(site.python.parent / "gunicorn"),
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "ihatemoney.wsgi:application",
    ]
    proc = subprocess.Popen(  # noqa: S603 - the venv's gunicorn, our own arguments
        cmd, env=site.env, cwd=IHM_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(proc, base + "/healthcheck", "gunicorn (ihatemoney)")
        yield base
    finally:
        _stop(proc)


# ---------------------------------------------------------------- HTTP scenarios


def http_create(
    base: str,
    requests: list[tuple[str, dict[str, Any]]],
    *,
    headers: dict[str, str],
    clients: int,
    form: bool,
    progress: lb.Progress,
    label: str,
) -> tuple[float, list[float], dict[str, int]]:
    """POST every (path, body) from ``clients`` httpx clients (threads); 201 counts as ok."""
    import httpx

    local = threading.local()

    def work(req: tuple[str, dict[str, Any]]) -> str:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=base, headers=headers, timeout=60)
        path, body = req
        reply = client.post(path, data=body) if form else client.post(path, json=body)
        if reply.status_code == 201:
            return "ok"
        raise RuntimeError(f"HTTP {reply.status_code}: {reply.text[:300]}")

    advance = progress.start(label, len(requests))
    return lb.run_threads(requests, clients, work, advance)


def potluck_bodies(group: PotluckGroup, plan: ExpensePlan) -> list[tuple[str, dict[str, Any]]]:
    m = group.member_ids
    return [
        (
            f"/v1/groups/{group.group_id}/expenses",
            {
                "description": f"expense {n}",
                "amount": amount,
                "date": TODAY.isoformat(),
                "paid_by": [{"user_id": m[payer], "amount": amount}],
                "split": {"method": "equal", "shares": [{"user_id": m[o]} for o in owers]},
            },
        )
        for n, (payer, amount, owers) in enumerate(plan.expenses, start=1)
    ]


def ihatemoney_bodies(site: IhmSite, plan: ExpensePlan) -> list[tuple[str, dict[str, Any]]]:
    m = site.members
    return [
        (
            f"/api/projects/{site.project}/bills",
            {
                "date": TODAY.isoformat(),
                "what": f"expense {n}",
                "payer": str(m[payer]),
                "payed_for": [str(m[o]) for o in owers],
                "amount": f"{amount / 100:.2f}",
                "original_currency": "XXX",
                "bill_type": "Expense",
            },
        )
        for n, (payer, amount, owers) in enumerate(plan.expenses, start=1)
    ]


def _timed_http(calls: list[Callable[[], Any]], runs: int) -> list[float]:
    """Wall time of ``calls`` one after the other, ``runs`` times (one warm-up first)."""
    for call in calls:
        call()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for call in calls:
            call()
        times.append(time.perf_counter() - t0)
    return times


def _ok(reply: Any) -> Any:
    if reply.status_code != 200:
        raise RuntimeError(f"HTTP {reply.status_code}: {reply.text[:300]}")
    return reply


def potluck_http_settle(base: str, group: PotluckGroup, *, runs: int) -> list[float]:
    import httpx

    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {group.token}"}, timeout=120
    ) as c:
        gid = group.group_id
        return _timed_http(
            [
                lambda: _ok(c.get(f"/v1/groups/{gid}/balances")),
                lambda: _ok(c.get(f"/v1/groups/{gid}/settle-up", params={"simplify": "true"})),
            ],
            runs,
        )


def ihatemoney_http_settle(base: str, site: IhmSite, *, runs: int) -> list[float]:
    """Its API's statistics (balances) and its settle page (session from its sign-in form)."""
    import httpx

    with httpx.Client(base_url=base, timeout=600) as c:
        reply = c.post("/authenticate", data={"id": site.project, "password": site.code})
        if reply.status_code not in (200, 302, 303) or not c.cookies:
            raise RuntimeError(f"ihatemoney sign-in failed: HTTP {reply.status_code}")
        auth = {"Authorization": f"Bearer {site.token}"}

        def settle_page() -> None:
            page = _ok(c.get(f"/{site.project}/settle_bills"))
            if "settle" not in page.text.lower():
                raise RuntimeError("ihatemoney: not the settle page")

        return _timed_http(
            [
                lambda: _ok(c.get(f"/api/projects/{site.project}/statistics", headers=auth)),
                settle_page,
            ],
            runs,
        )


# ---------------------------------------------------------------- the whole run


@dataclass
class Options:
    backends: list[str] = field(default_factory=lambda: ["sqlite"])
    ihatemoney: bool = True
    seed: int = 4
    workers: int = 2
    clients: int = 8
    create_members: int = 10
    create_expenses: int = 2_000
    settle_members: int = 50
    settle_expenses: int = 20_000
    large_members: int = 200
    large_expenses: int = 100_000
    load_batch: int = 500
    settle_loader: str = "bulk"  # bulk | service (sharing.create_expense per expense)
    large_loader: str = "bulk"
    runs: int = 10  # timed repetitions of balances + settle-up (Potluck)
    ihm_runs: int = 3  # the same for IHateMoney (seconds each at full size)
    pure_runs: int = 20
    admin_url: str = lb.PG_ADMIN_URL

    @classmethod
    def quick(cls, **overrides: Any) -> Options:
        values: dict[str, Any] = {
            "create_expenses": 60,
            "settle_members": 10,
            "settle_expenses": 300,
            "large_members": 20,
            "large_expenses": 600,
            "runs": 3,
            "ihm_runs": 2,
            "pure_runs": 3,
        }
        values.update(overrides)
        return cls(**values)


def _pair_rows(
    system: str, backend: str, scenario: str, where: str, times: list[float], note: str
) -> Row:
    return _latency_row(system, backend, f"{scenario}, {where}", times, note=note)


def _check_balances(
    report: Report, what: str, expected: list[int], got: dict[str, int], ids: list[Any]
) -> None:
    values = [got.get(str(i), 0) for i in ids]
    if values != expected:
        diff = max(abs(a - b) for a, b in zip(values, expected, strict=True))
        raise RuntimeError(f"{what}: balances differ from the plan's (max {diff} minor units)")
    report.checks.append(f"{what}: balances equal the plan's, to the minor unit")


def _audit(report: Report, url: str, what: str) -> None:
    """The ledger's own audit (every transfer balanced, account totals = their entries)."""
    from potluck.ledger import service as ledger

    db = Database(make_engine(url, pool_size=1))
    try:
        started = time.perf_counter()
        with db.read() as s:
            audit = ledger.audit(s)
        if not audit.ok:
            raise RuntimeError(f"{what}: ledger audit failed: {audit.problems[0]}")
        report.checks.append(f"{what}: ledger audit ok ({time.perf_counter() - started:.1f} s)")
    finally:
        db.dispose()


def run_create(
    report: Report, opts: Options, backend: str, python: Path | None, progress: lb.Progress
) -> None:
    plan = make_expense_plan(
        members=opts.create_members, expenses=opts.create_expenses, seed=opts.seed
    )
    w, c = opts.workers, opts.clients
    with lb.fresh_database(backend, opts.admin_url) as url:
        group = potluck_group(url, ExpensePlan(plan.members, []), progress=progress)
        with potluck_server(url, port=lb.free_port(), workers=w) as base:
            elapsed, lat, counts = http_create(
                base,
                potluck_bodies(group, plan),
                headers={"Authorization": f"Bearer {group.token}"},
                clients=c,
                form=False,
                progress=progress,
                label=f"{backend}: potluck HTTP expenses, {c} clients, {w} workers",
            )
        row = _latency_row(
            "potluck",
            backend,
            "create",
            lat,
            errors=counts["error"],
            note=f"POST /v1/groups/{{id}}/expenses, {c} clients, potluck serve --workers {w} "
            "(uvicorn, embedded relay), JWT, no Idempotency-Key",
        )
        row.seconds, row.operations = round(elapsed, 3), len(lat)
        row.per_second = round(counts["ok"] / elapsed, 1)
        report.figures.append(row)
        _, _, balances, _ = potluck_compute_times(url, group, runs=1)
        _check_balances(
            report, f"potluck {backend} create", plan.balances(), balances, group.member_ids
        )
    if python is None or report.find("ihatemoney", "sqlite", "create"):
        return
    with ihatemoney_site(python, None, plan.members) as site:
        with ihatemoney_server(site, port=lb.free_port(), workers=w) as base:
            elapsed, lat, counts = http_create(
                base,
                ihatemoney_bodies(site, plan),
                headers={"Authorization": f"Bearer {site.token}"},
                clients=c,
                form=True,
                progress=progress,
                label=f"ihatemoney HTTP bills, {c} clients, {w} workers",
            )
        row = _latency_row(
            "ihatemoney",
            "sqlite",
            "create",
            lat,
            errors=counts["error"],
            note=f"POST /api/projects/<id>/bills, {c} clients, gunicorn --workers {w} (sync), "
            "API token",
        )
        row.seconds, row.operations = round(elapsed, 3), len(lat)
        row.per_second = round(counts["ok"] / elapsed, 1)
        report.figures.append(row)
        got = site.driver("time", "--runs", "1")["balances"]
        _check_balances(report, "ihatemoney create", plan.balances(), got, site.members)


def run_settle(
    report: Report,
    opts: Options,
    backend: str,
    python: Path | None,
    progress: lb.Progress,
    *,
    members: int,
    expenses: int,
    name: str,
    loader: str,
) -> None:
    plan = make_expense_plan(members=members, expenses=expenses, seed=opts.seed + members)
    size = f"{members} members x {expenses:,} expenses"
    with lb.fresh_database(backend, opts.admin_url) as url:
        if loader == "bulk":
            group = potluck_group(url, ExpensePlan(members, []))
            group.load_seconds = potluck_bulk_load(
                url, group, plan, progress=progress, label=f"{backend} "
            )
            how = "bulk: expense rows + ledger.create_transfers, 2,000 expenses per transaction"
        else:
            group = potluck_group(
                url, plan, batch=opts.load_batch, progress=progress, label=f"{backend} "
            )
            how = f"sharing.create_expense, {opts.load_batch} per transaction"
        report.figures.append(
            Row(
                "potluck",
                backend,
                f"{name} load",
                expenses,
                round(group.load_seconds, 2),
                per_second=round(expenses / group.load_seconds, 1),
                note=f"{size}: {how}",
            )
        )
        bal, settle, balances, payments = potluck_compute_times(url, group, runs=opts.runs)
        _check_balances(
            report, f"potluck {backend} {name}", plan.balances(), balances, group.member_ids
        )
        _audit(report, url, f"potluck {backend} {name}")
        both = [a + b for a, b in zip(bal, settle, strict=True)]
        report.figures += [
            _latency_row("potluck", backend, f"{name} balances, in-process", bal, note=size),
            _latency_row(
                "potluck",
                backend,
                f"{name} settle-up, in-process",
                settle,
                note=f"{size}; simplify=true, {payments} payments",
            ),
            _latency_row(
                "potluck", backend, f"{name} balances + settle-up, in-process", both, note=size
            ),
        ]
        with potluck_server(url, port=lb.free_port(), workers=opts.workers) as base:
            times = potluck_http_settle(base, group, runs=opts.runs)
        report.figures.append(
            _latency_row(
                "potluck",
                backend,
                f"{name} balances + settle-up, HTTP",
                times,
                note=f"{size}; GET /balances + GET /settle-up?simplify=true, sequential",
            )
        )
    if python is None or report.find("ihatemoney", "sqlite", f"{name} balances + settle-up, HTTP"):
        return
    advance = progress.start(f"ihatemoney: loading {size}", 1)
    with ihatemoney_site(python, plan, members) as site:
        advance(1)
        report.figures.append(
            Row(
                "ihatemoney",
                "sqlite",
                f"{name} load",
                expenses,
                round(site.load_seconds, 2),
                per_second=round(expenses / site.load_seconds, 1) if site.load_seconds else None,
                note=f"{size}: bulk INSERT into bill/billowers (driver.py), not its API",
            )
        )
        advance = progress.start(f"ihatemoney: balances + settle, in-process x{opts.ihm_runs}", 1)
        timed = site.driver("time", "--runs", str(opts.ihm_runs))
        advance(1)
        _check_balances(
            report, f"ihatemoney {name}", plan.balances(), timed["balances"], site.members
        )
        bal, settle = timed["balance_seconds"], timed["settle_seconds"]
        both = [a + b for a, b in zip(bal, settle, strict=True)]
        report.figures += [
            _latency_row(
                "ihatemoney",
                "sqlite",
                f"{name} balances, in-process",
                bal,
                note=f"{size}; Project.members_stats",
            ),
            _latency_row(
                "ihatemoney",
                "sqlite",
                f"{name} settle-up, in-process",
                settle,
                note=f"{size}; get_transactions_to_settle_bill(), {timed['payments']} payments",
            ),
            _latency_row(
                "ihatemoney", "sqlite", f"{name} balances + settle-up, in-process", both, note=size
            ),
        ]
        advance = progress.start(f"ihatemoney: balances + settle, HTTP x{opts.ihm_runs}", 1)
        with ihatemoney_server(site, port=lb.free_port(), workers=opts.workers) as base:
            times = ihatemoney_http_settle(base, site, runs=opts.ihm_runs)
        advance(1)
        report.figures.append(
            _latency_row(
                "ihatemoney",
                "sqlite",
                f"{name} balances + settle-up, HTTP",
                times,
                note=f"{size}; GET /api/projects/<id>/statistics + GET /<id>/settle_bills",
            )
        )


def evaluate(report: Report, opts: Options) -> list[Target]:
    targets: list[Target] = []
    ihm_create = report.find("ihatemoney", "sqlite", "create")
    for backend in opts.backends:
        mine = report.find("potluck", backend, "create")
        if mine and ihm_create and mine.per_second and ihm_create.per_second:
            ratio = mine.per_second / ihm_create.per_second
            targets.append(
                Target(
                    f"HTTP expense creation, {opts.create_members} members, "
                    f"{opts.clients} clients, {backend}",
                    ">= 5x IHateMoney's bills/s",
                    f"{mine.per_second:,.0f}/s vs {ihm_create.per_second:,.0f}/s = {ratio:.1f}x",
                    ratio >= 5,
                )
            )
        else:
            targets.append(
                Target(f"HTTP expense creation, {backend}", ">= 5x IHateMoney", "-", None)
            )
        for where in ("HTTP", "in-process"):
            scenario = f"settle balances + settle-up, {where}"
            mine, theirs = (
                report.find("potluck", backend, scenario),
                report.find("ihatemoney", "sqlite", scenario),
            )
            name = (
                f"balances + settle-up, {opts.settle_members} x {opts.settle_expenses:,}, "
                f"{where}, {backend}"
            )
            if mine and theirs and mine.p50_ms and theirs.p50_ms:
                ratio = theirs.p50_ms / mine.p50_ms
                targets.append(
                    Target(
                        name,
                        "<= 1/100 of IHateMoney's time",
                        f"{mine.p50_ms:,.1f} ms vs {theirs.p50_ms:,.1f} ms = 1/{ratio:,.0f}",
                        ratio >= 100,
                    )
                )
            else:
                targets.append(Target(name, "<= 1/100 of IHateMoney's time", "-", None))
        for where in ("HTTP", "in-process"):
            row = report.find("potluck", backend, f"large balances + settle-up, {where}")
            targets.append(
                Target(
                    f"balances + settle-up, {opts.large_members} x {opts.large_expenses:,}, "
                    f"{where}, {backend}",
                    "< 200 ms (p50)",
                    "-" if row is None or row.p50_ms is None else f"{row.p50_ms:,.1f} ms",
                    None if row is None or row.p50_ms is None else row.p50_ms < 200,
                )
            )
    wanted = {
        "simplify, 15 non-zero balances, amounts up to 10^6": 100.0,
        "simplify, 15 non-zero balances, amounts 1..7": 100.0,
        "simplify, 10,000 balances": 1000.0,
    }
    for r in report.pure:
        limit = wanted.get(r["scenario"], 5.0 if r["scenario"].startswith("parse") else None)
        if limit is None:
            continue
        targets.append(
            Target(
                r["scenario"],
                f"p50 < {limit:g} ms",
                f"{r['p50_ms']} ms",
                r["p50_ms"] < limit,
            )
        )
    return targets


def run(opts: Options, progress: lb.Progress | None = None) -> Report:
    progress = progress or lb.SilentProgress()
    report = Report(machine=lb.machine_info(opts.admin_url), options=asdict(opts))
    report.options.pop("admin_url", None)
    report.pure = run_pure(runs=opts.pure_runs)
    python: Path | None = None
    if opts.ihatemoney:
        python = ensure_ihatemoney_venv(progress)
        report.machine["ihatemoney"] = _pinned()
    else:
        report.skipped.append("IHateMoney (--no-ihatemoney)")
    for backend in opts.backends:
        if backend == "postgresql" and (why := lb.postgres_reachable(opts.admin_url)):
            report.skipped.append(why)
            continue
        run_create(report, opts, backend, python, progress)
        run_settle(
            report,
            opts,
            backend,
            python,
            progress,
            members=opts.settle_members,
            expenses=opts.settle_expenses,
            name="settle",
            loader=opts.settle_loader,
        )
        run_settle(
            report,
            opts,
            backend,
            None,
            progress,
            members=opts.large_members,
            expenses=opts.large_expenses,
            name="large",
            loader=opts.large_loader,
        )
    report.machine["load_average_at_end"] = os.getloadavg()
    report.targets = evaluate(report, opts)
    return report


def _pinned() -> str:
    lines = (IHM_DIR / "requirements.txt").read_text().splitlines()
    return ", ".join(x for x in lines if x and not x.startswith("#"))


# ---------------------------------------------------------------- docs/benchmarks.md

RESULTS = lb.BENCH_DIR / "results" / "sharing.json"
DOC = lb.REPO / "docs" / "benchmarks.md"
DOC_START, DOC_END = "<!-- sharing-figures -->", "<!-- /sharing-figures -->"


def render(data: dict[str, Any]) -> str:
    """The figures, pure functions, targets and checks of a sharing.json, as Markdown."""
    m = data.get("machine", {})
    o = data.get("options", {})

    def tup(values: Any) -> str:
        return str(tuple(round(x, 1) for x in values or ()))

    lines = [
        f"Run of {m.get('started_at', '?')} on {m.get('cores')} cores ({m.get('cpu')}); load "
        f"average {tup(m.get('load_average_at_start'))} at the start, "
        f"{tup(m.get('load_average_at_end'))} at the end. IHateMoney: "
        f"{m.get('ihatemoney', 'not measured')}. Options: {o.get('workers')} server processes "
        f"each, {o.get('clients')} HTTP clients, seed {o.get('seed')}.",
        "",
        "| system | backend | scenario | ops | seconds | per second | p50 ms | p99 ms | load "
        "| note |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]

    def num(value: Any, fmt: str = ",.0f") -> str:
        return "-" if value is None else format(value, fmt)

    for f in data.get("figures", []):
        lines.append(
            f"| {f['system']} | {f['backend']} | {f['scenario']} | {f['operations']:,} | "
            f"{num(f['seconds'], ',.2f')} | {num(f['per_second'])} | "
            f"{num(f['p50_ms'], ',.2f')} | {num(f['p99_ms'], ',.2f')} | "
            f"{num(f.get('load_1m'), '.1f')} | {f['note']} |"
        )
    lines += ["", "| pure function | p50 ms | worst ms | note |", "|---|---:|---:|---|"]
    for r in data.get("pure", []):
        lines.append(f"| {r['scenario']} | {r['p50_ms']} | {r['max_ms']} | {r['note']} |")
    lines += ["", "| target (issue 4) | wanted | measured | result |", "|---|---|---|---|"]
    for t in data.get("targets", []):
        result = {True: "**pass**", False: "**miss**", None: "not measured"}[t["ok"]]
        lines.append(f"| {t['name']} | {t['wanted']} | {t['measured']} | {result} |")
    lines.append("")
    lines += [f"- checked: {c}" for c in data.get("checks", [])]
    lines += [f"- skipped: {s}" for s in data.get("skipped", [])]
    return "\n".join(lines).rstrip() + "\n"


def render_doc(results: Path = RESULTS, doc: Path = DOC) -> None:
    """Replace what stands between the sharing markers of docs/benchmarks.md."""
    text = doc.read_text()
    start, end = text.index(DOC_START) + len(DOC_START), text.index(DOC_END)
    body = render(json.loads(results.read_text()))
    doc.write_text(text[:start] + "\n" + body + text[end:])


if __name__ == "__main__":
    render_doc()
