"""schemathesis over the whole OpenAPI document, in-process, as a platform and as a person.

Checks: no 5xx, every reply matches its documented schema, status code and content type.
On both backends, like every integration test: what a database refuses (a NUL character in
a string on PostgreSQL) is part of the contract. The operations are dealt between the two
backends (each operation runs on one of them, as a platform and as a person, valid and
invalid input), which halves the file's time: the reply shapes do not depend on the database,
and every product's own tests run on both. Small example counts keep the file short.
"""

from __future__ import annotations

import pytest
import schemathesis
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from potluck.api.app import create_app
from potluck.identity import passwords, service

CHECKS = [
    checks.not_a_server_error,
    checks.response_schema_conformance,
    checks.status_code_conformance,
    checks.content_type_conformance,
]
PASSWORD = "correct horse battery"
MAX_EXAMPLES = 30
# The operations are dealt round-robin into shards, each its own test, so that pytest-xdist
# spreads the contract run over its workers instead of waiting for one long test; each
# backend takes every other slice of the operations.
SHARDS = 3
BACKEND_SLOT = {"sqlite": 0, "postgresql": 1}
SLICES = SHARDS * len(BACKEND_SLOT)
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


@pytest.fixture
def api(potluck, monkeypatch):
    # Argon2 at production cost would spend the time budget on hashing.
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    app = create_app(potluck)
    user = service.register_user(potluck, email="ada@example.com", password=PASSWORD, name="Ada")
    token = service.issue_token(potluck, email="ada@example.com", password=PASSWORD, client="t")
    _, secret = service.create_platform(potluck, name="Acme", owner_user_id=user.id)
    app.state.test_headers = {
        "platform": {"Authorization": f"Bearer {secret}"},
        "person": {"Authorization": f"Bearer {token.access_token}"},
    }
    return app


SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


def run_contract(app, headers, *, modes, shard, backend):
    """Every operation of one shard, each in its own hypothesis run; all failures are reported
    together."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    every = sorted((r.ok() for r in schema.get_all_operations()), key=lambda op: op.label)
    assert len(every) > 10
    failures = []
    operations = 0
    for operation in every[shard * len(BACKEND_SLOT) + BACKEND_SLOT[backend] :: SLICES]:
        operations += 1
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @SETTINGS
            def check(case):
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                check()
            except Unsatisfiable:
                pass  # nothing to make invalid: the operation takes no input
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} [{mode.value}]:\n{exc}")
    assert operations > 3
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("shard", range(SHARDS))
def test_api_contract_as_platform(api, shard, backend):
    run_contract(api, api.state.test_headers["platform"], modes=MODES, shard=shard, backend=backend)


@pytest.mark.parametrize("shard", range(SHARDS))
def test_api_contract_as_person(api, shard, backend):
    run_contract(api, api.state.test_headers["person"], modes=MODES, shard=shard, backend=backend)
