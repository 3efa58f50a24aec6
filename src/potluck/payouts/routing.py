"""Bank account numbers and routing codes: format checks and masking. Pure functions, no I/O.

Three routing schemes, each named by ``routing.type``:

- ``ifsc`` (India): ``routing.value`` is the IFSC (``^[A-Z]{4}0[A-Z0-9]{6}$``), the account
  number has 9–18 digits.
- ``sort_code`` (UK): ``routing.value`` is the sort code (6 digits; ``12-34-56`` accepted), the
  account number has 8 digits.
- ``iban`` (ISO 13616): the IBAN *is* the account number (spaces allowed, case ignored); it must
  have its country's length and pass the mod-97 check. ``routing.value`` may carry the bank's
  BIC (8 or 11 characters) or be left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from potluck.errors import DomainError

ROUTING_TYPES = ("ifsc", "iban", "sort_code")
MASK = "••••"

IFSC = re.compile(r"^[A-Z]{4}0[A-Z0-9]{6}$")
INDIAN_ACCOUNT = re.compile(r"^[0-9]{9,18}$")
SORT_CODE = re.compile(r"^[0-9]{6}$")
UK_ACCOUNT = re.compile(r"^[0-9]{8}$")
BIC = re.compile(r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$")
IBAN_SHAPE = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}$")

# IBAN length per country (SWIFT IBAN registry).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


class InvalidBankAccount(DomainError):
    """A bank account that does not pass its scheme's format checks (422)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__("invalid_bank_account", message, status=422, field=field)


@dataclass(frozen=True, slots=True)
class BankDetails:
    """A validated, normalised bank account."""

    routing_type: str
    routing_value: str | None  # IFSC, sort code, or the optional BIC of an IBAN
    account_number: str  # digits, or the IBAN without spaces
    country: str

    @property
    def last4(self) -> str:
        return self.account_number[-4:]

    @property
    def masked(self) -> str:
        return mask(self.account_number)


def mask(account_number: str) -> str:
    """``••••1234``: the only form in which an account number ever leaves Potluck."""
    return MASK + account_number[-4:]


def iban_checksum_ok(iban: str) -> bool:
    """ISO 13616 / ISO 7064 mod 97-10: the rearranged IBAN, letters as 10..35, mod 97 is 1.

    Check digits are 02..98 (00, 01 and 99 would alias 97, 98 and 02).
    """
    if not 2 <= int(iban[2:4]) <= 98:
        return False
    rearranged = iban[4:] + iban[:4]
    digits = "".join(str(int(c, 36)) for c in rearranged)
    return int(digits) % 97 == 1


def _compact(value: str) -> str:
    return re.sub(r"[\s-]", "", value).upper()


def validate_iban(raw: str) -> tuple[str, str]:
    """The IBAN without spaces, and its country; or ``InvalidBankAccount``."""
    iban = re.sub(r"\s", "", raw).upper()
    if not IBAN_SHAPE.match(iban):
        raise InvalidBankAccount(
            "an IBAN is a country code, two check digits and up to 30 letters or digits",
            field="account_number",
        )
    country = iban[:2]
    expected = IBAN_LENGTHS.get(country)
    if expected is None:
        raise InvalidBankAccount(
            f"{country} does not use IBANs (or is not a country code)", field="account_number"
        )
    if len(iban) != expected:
        raise InvalidBankAccount(
            f"an IBAN from {country} has {expected} characters, this one has {len(iban)}",
            field="account_number",
        )
    if not iban_checksum_ok(iban):
        raise InvalidBankAccount(
            "the IBAN's check digits are wrong (mod-97 check failed)", field="account_number"
        )
    return iban, country


def validate(routing_type: str, routing_value: str | None, account_number: str) -> BankDetails:
    """Check an account against its routing scheme and return it normalised."""
    if routing_type == "ifsc":
        ifsc = (routing_value or "").strip().upper()
        if not IFSC.match(ifsc):
            raise InvalidBankAccount(
                "an IFSC is 4 letters, a 0, then 6 letters or digits (e.g. HDFC0001234)",
                field="routing.value",
            )
        number = account_number.strip()
        if not INDIAN_ACCOUNT.match(number):
            raise InvalidBankAccount(
                "an Indian account number has 9 to 18 digits", field="account_number"
            )
        return BankDetails("ifsc", ifsc, number, "IN")
    if routing_type == "sort_code":
        code = _compact(routing_value or "")
        if not SORT_CODE.match(code):
            raise InvalidBankAccount(
                "a sort code has 6 digits (e.g. 12-34-56)", field="routing.value"
            )
        number = account_number.strip()
        if not UK_ACCOUNT.match(number):
            raise InvalidBankAccount("a UK account number has 8 digits", field="account_number")
        return BankDetails("sort_code", code, number, "GB")
    if routing_type == "iban":
        iban, country = validate_iban(account_number)
        bic = None
        if routing_value is not None and routing_value.strip():
            bic = routing_value.strip().upper()
            if not BIC.match(bic):
                raise InvalidBankAccount(
                    "a BIC has 8 or 11 letters or digits (e.g. DEUTDEFF)", field="routing.value"
                )
        return BankDetails("iban", bic, iban, country)
    raise InvalidBankAccount(
        f"routing.type must be one of {', '.join(ROUTING_TYPES)}", field="routing.type"
    )
