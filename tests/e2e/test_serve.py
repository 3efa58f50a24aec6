"""`potluck serve` as a real process: migrate, demo data, serve, use the API, audit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "potluck.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def start_server(tmp_path: Path, **extra_env: str):
    port = free_port()
    env = (
        os.environ
        | {
            "POTLUCK_DATABASE_URL": f"sqlite:///{tmp_path / 'potluck.db'}",
            "POTLUCK_LOG_JSON": "true",
        }
        | extra_env
    )
    assert run(env, "db", "upgrade").returncode == 0
    demo = run(env, "demo")
    assert demo.returncode == 0, demo.stderr
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "potluck.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError((tmp_path / "server.log").read_text())
        time.sleep(0.1)  # waiting for a process to start listening, not hiding a race
    return proc, log, base, env


@pytest.fixture
def server(tmp_path: Path):
    proc, log, base, env = start_server(tmp_path)
    yield base, env, tmp_path
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


def test_behind_a_trusted_proxy_each_client_has_its_own_sign_in_limit(tmp_path: Path):
    proc, log, base, _ = start_server(
        tmp_path, POTLUCK_FORWARDED_ALLOW_IPS="127.0.0.1", POTLUCK_LOGIN_MAX_PER_CLIENT="3"
    )
    try:
        with httpx.Client(base_url=base, timeout=10) as c:

            def attempt(n: int, client: str) -> int:
                body = {"email": f"nobody{n}@example.com", "password": "wrong password!"}
                headers = {"X-Forwarded-For": client}
                return c.post("/v1/auth/token", json=body, headers=headers).status_code

            assert [attempt(n, "203.0.113.7") for n in range(4)] == [401, 401, 401, 429]
            # another client behind the same proxy is not locked out with the first
            assert attempt(9, "198.51.100.2") == 401
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_a_new_user_session(server):
    base, env, tmp_path = server
    with httpx.Client(base_url=base, timeout=10) as c:
        assert c.get("/readyz").status_code == 200
        r = c.post(
            "/v1/auth/register",
            json={"email": "ann@example.com", "password": "correct horse battery", "name": "Ann"},
        )
        assert r.status_code == 201, r.text
        token = c.post(
            "/v1/auth/token", json={"email": "ann@example.com", "password": "correct horse battery"}
        ).json()["access_token"]
        me = c.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert me["email"] == "ann@example.com"
        key = c.post(
            "/v1/platforms", json={"name": "Ann Shop"}, headers={"Authorization": f"Bearer {token}"}
        ).json()["secret_key"]
        h = {"Authorization": f"Bearer {key}"}
        a = c.post("/v1/accounts", json={"currency": "EUR", "code": "clearing"}, headers=h).json()
        b = c.post(
            "/v1/accounts",
            json={
                "currency": "EUR",
                "code": "wallet",
                "flags": {"debits_must_not_exceed_credits": True},
            },
            headers=h,
        ).json()
        body = {
            "debit_account": a["id"],
            "credit_account": b["id"],
            "amount": 1250,
            "currency": "EUR",
        }
        first = c.post("/v1/transfers", json=body, headers=h | {"Idempotency-Key": "k-1"})
        again = c.post("/v1/transfers", json=body, headers=h | {"Idempotency-Key": "k-1"})
        assert first.status_code == 201
        assert again.status_code == 201
        assert again.headers.get("idempotent-replayed") == "true"
        assert again.json() == first.json()
        assert c.get(f"/v1/accounts/{b['id']}", headers=h).json()["balance"]["total"] == 1250
        float_amount = c.post("/v1/transfers", json=body | {"amount": 12.5}, headers=h)
        assert float_amount.status_code == 422
        assert float_amount.headers["content-type"].startswith("application/problem+json")
        assert "x-request-id" in first.headers
    audit = run(env, "ledger", "audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    log_lines = (tmp_path / "server.log").read_text().splitlines()
    assert any('"request_id"' in line for line in log_lines)
