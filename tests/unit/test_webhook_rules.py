"""Webhook rules without I/O: URL checks (SSRF guard), event types, backoff."""

from __future__ import annotations

import pytest

from potluck.config import Settings
from potluck.notify.sender import backoff_seconds, lease_seconds
from potluck.notify.service import (
    DELIVERABLE_EVENTS,
    WebhookError,
    check_events,
    check_url,
    is_public_address,
    resolve_host,
    subscribed,
)

STRICT = Settings(database_url="sqlite://")
LAX = Settings(
    database_url="sqlite://", webhook_allow_insecure_urls=True, webhook_allow_private_urls=True
)


def public(_host: str) -> list[str]:
    return ["93.184.216.34"]


def resolver(*addresses: str):
    def resolve(_host: str) -> list[str]:
        return list(addresses)

    return resolve


def unresolvable(host: str) -> list[str]:
    raise OSError(f"no such host {host}")


def refused(url: str, settings: Settings = STRICT, resolve=public) -> WebhookError:
    with pytest.raises(WebhookError) as info:
        check_url(url, settings=settings, resolve=resolve)
    assert info.value.field == "url"
    assert info.value.status == 422
    return info.value


def test_https_on_a_public_host_is_accepted():
    assert check_url("https://hooks.example.com/potluck?x=1", settings=STRICT, resolve=public)
    assert check_url("https://93.184.216.34:8443/hook", settings=STRICT, resolve=unresolvable)


def test_http_needs_the_insecure_setting():
    assert refused("http://hooks.example.com/").code == "invalid_url"
    assert check_url("http://127.0.0.1:9/hook", settings=LAX)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "https://",
        "https://user:pw@example.com/",
        "https://example.com/#f",
        "https://example.com:99999/",
        "not a url",
        "https://" + "a" * 2050 + ".com/",
    ],
)
def test_malformed_urls_are_refused(url):
    assert refused(url).code == "invalid_url"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "0.0.0.0",
        "::1",
        "fc00::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "100.64.0.1",
        "224.0.0.1",
    ],
)
def test_private_loopback_and_metadata_addresses_are_refused(address):
    assert not is_public_address(address)
    host = f"[{address}]" if ":" in address else address
    assert refused(f"https://{host}/hook").code == "url_not_allowed"
    # ...also when a public-looking name resolves there (one bad address is enough)
    assert refused("https://hooks.example.com/", resolve=resolver("93.184.216.34", address))


def test_an_unresolvable_host_is_refused_unless_private_urls_are_allowed():
    assert refused("https://nowhere.invalid/", resolve=unresolvable).code == "invalid_url"
    assert check_url("https://nowhere.invalid/", settings=LAX, resolve=unresolvable)


def test_event_types_are_checked():
    assert check_events(["payout.failed", "payout.failed", "order.recorded"]) == [
        "payout.failed",
        "order.recorded",
    ]
    assert check_events(["*"]) == ["*"]
    for bad in (["payout.exploded"], [], ["*", "payout.failed"]):
        with pytest.raises(WebhookError) as info:
            check_events(bad)
        assert info.value.field == "events"
    assert subscribed(["*"], "split.completed")
    assert subscribed(["split.completed"], "split.completed")
    assert not subscribed(["payout.failed"], "split.completed")
    assert "payout.completed" in DELIVERABLE_EVENTS


def test_backoff_doubles_from_the_base_up_to_the_cap():
    s = Settings(
        database_url="sqlite://", webhook_backoff_base_seconds=60, webhook_backoff_max_seconds=600
    )
    assert [backoff_seconds(s, n) for n in range(1, 7)] == [60, 120, 240, 480, 600, 600]
    assert backoff_seconds(s, 10_000) == 600


def test_the_lease_covers_a_whole_round_of_timeouts():
    s = Settings(database_url="sqlite://", webhook_lease_seconds=120)
    assert lease_seconds(s) == 120  # 10 s x 1 round + 30 s margin is less
    slow = s.model_copy(update={"webhook_timeout_seconds": 30.0, "webhook_concurrency": 2})
    assert lease_seconds(slow) == 30 * 10 + 30  # 20 deliveries, 2 at a time


def test_a_host_that_is_not_a_valid_name_is_invalid_not_an_error():
    # The real resolver: IDNA refuses these before any lookup (UnicodeError, not OSError).
    assert refused("https://" + "a" * 300 + ".com/", resolve=resolve_host).code == "invalid_url"
    assert refused("https://h\u2028x.com/", resolve=resolve_host).code == "invalid_url"
