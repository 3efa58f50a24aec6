"""Non-members get 404 from the sharing endpoints that test_sharing_api.py's list does not
cover (export in both formats, reports), a removed member loses access too, and a refused
request changes nothing. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from potluck.api.app import create_app
from tests.integration.test_sharing_api import (  # noqa: F401 (cheap_hashing: autouse)
    balances,
    cheap_hashing,
    expense,
    ids,
    make_group,
    person,
    problem,
)

ENDPOINTS = [
    "/v1/groups/{g}/export",  # CSV, the default
    "/v1/groups/{g}/export?format=json",
    "/v1/groups/{g}/reports",
]


@pytest.fixture
def client(potluck):
    with TestClient(create_app(potluck)) as c:
        yield c


@pytest.mark.parametrize("path", ENDPOINTS)
def test_non_members_get_404(potluck, client, path):
    _, ada = person(potluck, "ada")
    _, eve = person(potluck, "eve")
    group = make_group(client, ada, "bob@example.com")
    expense(client, ada, group["id"], amount=300)
    r = client.get(path.format(g=group["id"]), headers=eve)
    body = problem(r, 404, "group_not_found")
    assert group["id"] in body["detail"]
    assert "content-disposition" not in r.headers
    # the same answer as for a group that does not exist: nothing tells them apart
    other = problem(client.get(path.format(g="grp_nope"), headers=eve), 404, "group_not_found")
    assert set(other) == set(body)
    assert balances(client, ada, group["id"]) == dict(zip(ids(group), (150, -150), strict=True))


def test_removed_member_loses_access_to_export(potluck, client):
    _, ada = person(potluck, "ada")
    _, bob = person(potluck, "bob")
    group = make_group(client, ada, "bob@example.com")
    gid = group["id"]
    assert client.get(f"/v1/groups/{gid}/export", headers=bob).status_code == 200
    _, b = ids(group)
    assert client.delete(f"/v1/groups/{gid}/members/{b}", headers=ada).status_code == 200
    problem(client.get(f"/v1/groups/{gid}/export", headers=bob), 404, "group_not_found")
    problem(client.get(f"/v1/groups/{gid}/export?format=json", headers=bob), 404, "group_not_found")
