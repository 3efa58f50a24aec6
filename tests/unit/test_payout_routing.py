"""Bank account formats: IFSC, IBAN (ISO 13616 mod-97 and country length), UK sort code."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from potluck.payouts import routing
from potluck.payouts.routing import InvalidBankAccount, validate

VALID_IBANS = [
    "DE89370400440532013000",
    "GB29NWBK60161331926819",
    "FR1420041010050500013M02606",
    "NL91ABNA0417164300",
    "NO9386011117947",
    "BE68539007547034",
    "CH9300762011623852957",
]


@pytest.mark.parametrize("iban", VALID_IBANS)
def test_valid_ibans_pass_and_are_normalised(iban):
    spaced = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)).lower()
    details = validate("iban", None, spaced)
    assert details.account_number == iban
    assert details.country == iban[:2]
    assert details.masked == "••••" + iban[-4:]


@pytest.mark.parametrize("iban", VALID_IBANS)
def test_changing_any_one_digit_breaks_the_checksum(iban):
    for i in range(2, len(iban)):
        if not iban[i].isdigit():
            continue
        wrong = iban[:i] + str((int(iban[i]) + 1) % 10) + iban[i + 1 :]
        with pytest.raises(InvalidBankAccount) as exc:
            validate("iban", None, wrong)
        assert exc.value.field == "account_number"


@pytest.mark.parametrize(
    ("iban", "why"),
    [
        ("DE8937040044053201300", "22 characters"),  # one short
        ("DE893704004405320130000", "22 characters"),  # one long
        ("XX89370400440532013000", "does not use IBANs"),
        ("89DE370400440532013000", "country code"),
        ("DE89-3704-0044", "country code"),
        ("", "country code"),
    ],
)
def test_malformed_ibans_say_why(iban, why):
    with pytest.raises(InvalidBankAccount, match=why):
        validate("iban", None, iban)


def test_an_iban_may_carry_a_bic():
    assert validate("iban", "deutdeff", VALID_IBANS[0]).routing_value == "DEUTDEFF"
    assert validate("iban", "DEUTDEFF500", VALID_IBANS[0]).routing_value == "DEUTDEFF500"
    with pytest.raises(InvalidBankAccount) as exc:
        validate("iban", "DEUT", VALID_IBANS[0])
    assert exc.value.field == "routing.value"


@pytest.mark.parametrize("ifsc", ["HDFC0001234", "SBIN0ABC123", "icic0000001"])
@pytest.mark.parametrize("number", ["123456789", "123456789012345678"])
def test_ifsc_accounts(ifsc, number):
    details = validate("ifsc", ifsc, number)
    assert (details.routing_value, details.account_number, details.country) == (
        ifsc.upper(),
        number,
        "IN",
    )


@pytest.mark.parametrize(
    ("ifsc", "number", "field"),
    [
        ("HDFC1001234", "123456789", "routing.value"),  # fifth character must be 0
        ("HDF00001234", "123456789", "routing.value"),
        ("HDFC000123", "123456789", "routing.value"),
        (None, "123456789", "routing.value"),
        ("HDFC0001234", "12345678", "account_number"),  # 8 digits
        ("HDFC0001234", "1234567890123456789", "account_number"),  # 19 digits
        ("HDFC0001234", "12345678A", "account_number"),
    ],
)
def test_bad_ifsc_accounts(ifsc, number, field):
    with pytest.raises(InvalidBankAccount) as exc:
        validate("ifsc", ifsc, number)
    assert exc.value.field == field
    assert exc.value.status == 422


@pytest.mark.parametrize("code", ["601613", "60-16-13", "60 16 13"])
def test_sort_codes(code):
    details = validate("sort_code", code, "31926819")
    assert (details.routing_value, details.country) == ("601613", "GB")


@pytest.mark.parametrize(
    ("code", "number", "field"),
    [
        ("60161", "31926819", "routing.value"),
        ("6016134", "31926819", "routing.value"),
        ("60161A", "31926819", "routing.value"),
        ("601613", "3192681", "account_number"),
        ("601613", "319268190", "account_number"),
    ],
)
def test_bad_sort_codes(code, number, field):
    with pytest.raises(InvalidBankAccount) as exc:
        validate("sort_code", code, number)
    assert exc.value.field == field


def test_an_unknown_routing_type_is_refused():
    with pytest.raises(InvalidBankAccount) as exc:
        validate("aba", "021000021", "123456789")
    assert exc.value.field == "routing.type"


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=4, max_size=34))
def test_a_mask_shows_the_last_four_characters_and_nothing_else(number):
    masked = routing.mask(number)
    assert masked == "••••" + number[-4:]
    assert len(masked) <= 8


@given(st.integers(min_value=0, max_value=10**18 - 1))
def test_mod97_accepts_exactly_the_right_check_digits(bban_number):
    """For a German BBAN, exactly one pair of check digits (out of 00..99) passes."""
    bban = f"{bban_number:018d}"
    passing = [cd for cd in range(100) if routing.iban_checksum_ok(f"DE{cd:02d}{bban}")]
    assert len(passing) == 1
    assert 2 <= passing[0] <= 98
