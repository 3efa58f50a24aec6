"""The deployment files (Procfile, docker-compose.yml, Dockerfile) match the code.

There is no Docker engine on the development machine: the compose file is parsed and checked
here, not run. Every service of the handler registry must have a worker in both files, so a
product that adds a service without a worker pool fails this test.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml
from typer.main import get_command

from potluck import cli
from potluck.bootstrap import register_handlers
from potluck.bus.registry import HandlerRegistry

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def services() -> list[str]:
    registry = HandlerRegistry()
    register_handlers(registry)
    names = registry.services()
    assert {"splitter", "wallets", "payouts", "webhooks"} <= set(names)
    return names


def procfile() -> dict[str, list[str]]:
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, command = line.split(":", 1)
        assert name not in entries, f"{name} twice in the Procfile"
        entries[name] = shlex.split(command)
    return entries


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def worker_services(command: list[str]) -> list[str]:
    assert command[:2] == ["potluck", "worker"], command
    return [command[i + 1] for i, arg in enumerate(command) if arg == "--service"]


def test_procfile_runs_the_api_a_relay_and_a_worker_per_service(services):
    entries = procfile()
    assert entries["release"] == ["potluck", "db", "upgrade"]
    assert entries["web"][:2] == ["potluck", "serve"]
    assert "--no-embedded-workers" in entries["web"]
    assert entries["relay"] == ["potluck", "relay"]
    consumed = [
        s
        for name, cmd in entries.items()
        if name.startswith("worker")
        for s in worker_services(cmd)
    ]
    assert sorted(consumed) == services  # each service exactly once
    commands = set(get_command(cli.app).commands)  # type: ignore[attr-defined]
    assert {cmd[1] for cmd in entries.values()} <= commands


def test_compose_file_has_the_stack_and_a_worker_per_service(services):
    spec = compose()
    stack = spec["services"]
    assert {"postgres", "rabbitmq", "migrate", "api", "relay"} <= set(stack)
    consumed = [
        s
        for name, svc in stack.items()
        if name.startswith("worker-")
        for s in worker_services(svc["command"])
    ]
    assert sorted(consumed) == services
    potluck_processes = {
        name: svc
        for name, svc in stack.items()
        if name == "api" or name == "relay" or name.startswith("worker-")
    }
    for name, svc in potluck_processes.items():
        env = svc["environment"]
        assert env["POTLUCK_TRANSPORT"] == "rabbitmq", name
        assert env["POTLUCK_DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert "@postgres:" in env["POTLUCK_DATABASE_URL"], name
        assert "@rabbitmq:" in env["POTLUCK_BROKER_URL"], name
        assert env["POTLUCK_EMBEDDED_WORKERS"] == "false", name
        assert svc["image"] == stack["migrate"]["image"], name
        # Nobody starts before the schema is migrated and the broker answers.
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert svc["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    assert stack["migrate"]["command"] == ["potluck", "db", "upgrade"]
    assert stack["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "--no-embedded-workers" in stack["api"]["command"]
    assert stack["migrate"]["build"] == "."


def test_dockerfile_installs_the_package_and_runs_unprivileged():
    text = (ROOT / "Dockerfile").read_text()
    lines = [
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]
    assert lines[0].startswith("FROM python:3.11")  # pyproject: requires-python 3.11
    assert any("pip install ." in line for line in lines)
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
    assert "--no-embedded-workers" in text
