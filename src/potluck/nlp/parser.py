"""The rule parser: "I paid 90 for dinner with Bob and Ann, Bob had wine for 20" → a proposal.

Pure: no database, no clock (``today`` is passed in), no network. The text goes through
fixed passes over one working string:

1. dates ("yesterday", "on 3 May", "last Friday", "2026-05-03") are read and removed;
2. ratios (2:1:1), percentages (30 %, 30 percent) and amounts ($12.50, 12,50 €, ₹500,
   INR 500, 1.234,56 EUR, 90) become placeholders ``R0``, ``P0``, ``A0``;
3. people become ``M<i>`` ("I"/"me"/"my" = the caller; a member by full name, first name or
   unique prefix, or email);
4. small grammar rules over that string find payers, participants ("with", "between",
   "everyone", "all but X"), items ("X had the steak for 25"), exact shares ("X owes 30"),
   percentages ("X owes 30%") and weights ("X pays double").

What it cannot read with certainty is refused with ``ParseError`` (422 ``cannot_parse``),
whose message says what is missing or ambiguous; what it assumed is listed in ``warnings``.
The proposal has the shape of the create-expense request; ``split_expense`` gives ``owed``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from potluck.errors import DomainError
from potluck.money import MoneyError, allocate, exponent, is_currency
from potluck.splits.expense import ExpenseSplit, Item, Share, split_expense

__all__ = ["MemberRef", "ParseError", "Proposal", "owed", "parse_expense"]

MAX_TEXT = 500


class ParseError(DomainError):
    """The text cannot be turned into an expense with certainty (422 ``cannot_parse``)."""

    def __init__(self, message: str) -> None:
        super().__init__("cannot_parse", message, status=422, field="text")


@dataclass(frozen=True, slots=True)
class MemberRef:
    id: str
    name: str
    email: str = ""


@dataclass(slots=True)
class Proposal:
    description: str
    amount: int
    currency: str
    date: date
    category: str
    paid_by: list[tuple[str, int]]
    split: ExpenseSplit
    warnings: list[str] = field(default_factory=list)


def owed(proposal: Proposal, members: Sequence[str]) -> list[tuple[str, int]]:
    """Who owes what under the proposal (the shared split function: sums are exact)."""
    return split_expense(proposal.amount, proposal.split, members)


# --- vocabulary ----------------------------------------------------------------------------

_SYMBOLS = {
    "$": "$",  # the group's dollar when it has one, else USD
    "€": "EUR",
    "£": "GBP",
    "₹": "INR",
    "¥": "JPY",
    "₩": "KRW",
    "₺": "TRY",
    "₽": "RUB",
    "₪": "ILS",
    "฿": "THB",
    "₱": "PHP",
    "₦": "NGN",
    "₴": "UAH",
}
_DOLLARS = {"USD", "CAD", "AUD", "NZD", "SGD", "HKD", "MXN"}
_WORDS = {
    "euro": "EUR",
    "euros": "EUR",
    "eur": "EUR",
    "dollar": "$",
    "dollars": "$",
    "bucks": "$",
    "usd": "USD",
    "pound": "GBP",
    "pounds": "GBP",
    "quid": "GBP",
    "gbp": "GBP",
    "rupee": "INR",
    "rupees": "INR",
    "rs": "INR",
    "rs.": "INR",
    "inr": "INR",
    "yen": "JPY",
    "jpy": "JPY",
    "chf": "CHF",
    "francs": "CHF",
    "cad": "CAD",
    "aud": "AUD",
    "sek": "SEK",
    "nok": "NOK",
    "dkk": "DKK",
    "pln": "PLN",
    "czk": "CZK",
    "cny": "CNY",
    "yuan": "CNY",
    "brl": "BRL",
    "mxn": "MXN",
    "sgd": "SGD",
    "hkd": "HKD",
    "nzd": "NZD",
    "zar": "ZAR",
    "kwd": "KWD",
}

CATEGORIES: dict[str, tuple[str, ...]] = {
    "food": (
        "dinner",
        "lunch",
        "breakfast",
        "brunch",
        "restaurant",
        "pizza",
        "steak",
        "lobster",
        "ramen",
        "thali",
        "chai",
        "pasta",
        "pizzas",
        "sushi",
        "burger",
        "burgers",
        "meal",
        "food",
        "takeaway",
        "takeout",
        "coffee",
        "coffees",
        "cafe",
        "drinks",
        "beer",
        "beers",
        "wine",
        "bar",
        "pub",
        "snacks",
        "curry",
        "tacos",
        "kebab",
        "ice cream",
        "bbq",
        "cocktails",
    ),
    "groceries": ("groceries", "grocery", "supermarket", "lidl", "aldi", "tesco", "market"),
    "transport": (
        "taxi",
        "uber",
        "lyft",
        "cab",
        "bus",
        "train",
        "metro",
        "subway",
        "tram",
        "fuel",
        "petrol",
        "diesel",
        "parking",
        "toll",
        "tolls",
        "car rental",
        "ferry",
    ),
    "travel": ("hotel", "flight", "flights", "airbnb", "hostel", "trip", "tickets to", "visa"),
    "housing": ("rent", "mortgage", "deposit"),
    "utilities": (
        "electricity",
        "electric",
        "water bill",
        "internet",
        "wifi",
        "broadband",
        "phone bill",
        "gas bill",
        "heating",
        "utilities",
    ),
    "entertainment": (
        "movie",
        "movies",
        "cinema",
        "concert",
        "netflix",
        "spotify",
        "tickets",
        "museum",
        "theatre",
        "theater",
        "bowling",
        "karaoke",
        "games",
    ),
    "household": ("cleaning", "cleaner", "furniture", "toilet paper", "detergent", "supplies"),
    "shopping": ("clothes", "gift", "present", "shoes"),
    "health": ("pharmacy", "doctor", "medicine", "dentist", "gym"),
}
_CATEGORY_OF = {w: c for c, words in CATEGORIES.items() for w in words}
_CATEGORY_RE = re.compile(
    r"\b(" + "|".join(sorted(map(re.escape, _CATEGORY_OF), key=len, reverse=True)) + r")\b"
)

_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for m in names
}
_WEEKDAYS = {
    d: i
    for i, names in enumerate(
        [
            ("monday", "mon"),
            ("tuesday", "tue", "tues"),
            ("wednesday", "wed"),
            ("thursday", "thu", "thurs"),
            ("friday", "fri"),
            ("saturday", "sat"),
            ("sunday", "sun"),
        ]
    )
    for d in names
}
_ME = {"i", "me", "my", "myself", "mine", "i've", "i'm", "i'd"}
_ALL_WORDS = r"(?:everyone|everybody|all of us|all|the whole group|the group|us all|us)"
# Words never read as a name prefix (a lowercase "car" is not Carl).
_VOCAB = (
    set(_CATEGORY_OF)
    | set(_MONTHS)
    | set(_WEEKDAYS)
    | set(_WORDS)
    | {
        "a an and as at be by for of on or to the in it is we us our he she they them his her",
        "paid pay pays payed owes owe owed had has have got get gets took take takes split",
        "with between among amongst everyone everybody all but except excluding minus without",
        "evenly equally even equal rest remaining other others each per share shares double",
        "twice triple half times yesterday today tonight last this ago days day week night",
        "bill check tab total cost costs was were who what which that then than so some",
        "ordered bought covered fronted spent treat too also just only plus tip tax",
        "percent cents cent from into out up down over new old big small one two three four",
        "five six seven eight nine ten tomorrow morning evening afternoon",
    }
)
_VOCAB = {w for chunk in _VOCAB for w in chunk.split()}

# --- numbers and amounts -------------------------------------------------------------------

_NUM = r"\d+(?:[.,]\d+)*"
_SYM = "|".join(map(re.escape, _SYMBOLS))
_NUMBER_RE = re.compile(rf"(?<![\w.,])(?P<num>{_NUM})(?P<k>k\b)?(?![\w])")
_BEFORE_RE = re.compile(rf"(?P<mark>{_SYM}|\b[A-Za-z]{{2,3}}\.?)\s?$")
_AFTER_RE = re.compile(rf"\s?(?P<mark>{_SYM}|[A-Za-z]{{2,7}}\b)")


def _currency_of(mark: str) -> str | None:
    """The currency a symbol, an ISO code (upper case) or a word names; None: not money."""
    if mark in _SYMBOLS:
        return _SYMBOLS[mark]
    word = mark.rstrip(".")
    if word.lower() in _WORDS:
        return _WORDS[word.lower()]
    if len(word) == 3 and word.isupper() and is_currency(word):
        return word
    return None


_PERCENT_RE = re.compile(rf"(?<![\w.,])(?P<num>{_NUM})\s?(?:%|percent\b|per cent\b|pc\b)", re.I)
_RATIO_RE = re.compile(r"(?<![\w.,:])(\d+(?:\s?:\s?\d+)+)(?![\w.,:])")
_WEIGHT_NUM_RE = re.compile(
    r"(?<![\w.,])(\d+)\s?(?:shares?\b|times\b|x\b)|\bx\s?(\d+)\b|\b(\d+)x\b", re.I
)


def _short(raw: str) -> str:
    return raw if len(raw) <= 24 else raw[:20] + "…"


def _decimal(raw: str, digits: int) -> tuple[int, int]:
    """Parse "1.234,56" / "1,234.56" / "12,50" / "1,234" into (integer, decimal places)."""
    seps = [c for c in raw if c in ".,"]
    if not seps:
        return int(raw), 0
    last = max(raw.rfind("."), raw.rfind(","))
    after = raw[last + 1 :]
    kinds = set(seps)
    if len(kinds) == 2:
        decimal_sep = raw[last]
    elif len(seps) > 1:
        decimal_sep = None  # 1,234,567 or 1.234.567: thousands only
    elif len(after) == 3 and not (seps[0] == "." and digits == 3):
        decimal_sep = None  # 1,234 / 1.234 (unless the currency has three decimals)
    else:
        decimal_sep = seps[0]
    if decimal_sep is None:
        whole, frac = raw, ""
    else:
        whole, frac = raw[:last], after
        if decimal_sep in whole:
            raise ParseError(f"'{_short(raw)}' is not a number I can read")
    groups = re.split(r"[.,]", whole)
    if len(groups) > 1 and (not 1 <= len(groups[0]) <= 3 or any(len(g) != 3 for g in groups[1:])):
        raise ParseError(f"'{_short(raw)}' is not a number I can read")
    return int("".join(groups) + frac), len(frac)


def _minor(raw: str, currency: str, thousands: bool = False) -> int:
    digits = exponent(currency)
    value, places = _decimal(raw, digits)
    if thousands:
        value *= 1000
    if places > digits:
        if thousands and places <= digits + 3:
            return value * 10**digits // 10**places
        raise ParseError(f"{currency} has {digits} decimal places; '{_short(raw)}' has more")
    return value * 10 ** (digits - places)


# --- dates ---------------------------------------------------------------------------------

_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))
_WEEKDAY_RE = "|".join(sorted(_WEEKDAYS, key=len, reverse=True))
_DATE_RES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(?:on\s+)?(\d{4})-(\d{2})-(\d{2})\b"), "iso"),
    (
        re.compile(
            rf"\b(?:on\s+)?(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH_RE})\.?"
            r"(?:,?\s+(\d{4}))?(?![a-z])",
            re.I,
        ),
        "dm",
    ),
    (
        re.compile(
            rf"\b(?:on\s+)?({_MONTH_RE})\.?\s+(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?"
            r"(?:,?\s+(\d{4}))?(?![\d])",
            re.I,
        ),
        "md",
    ),
    (re.compile(r"\b(?:on\s+)?(\d{1,2})/(\d{1,2})(?:/(\d{4}))?(?![\d/])"), "d/m"),
    (re.compile(r"\b(?:the\s+)?day\s+before\s+yesterday\b", re.I), "-2"),
    (re.compile(r"\b(?:yesterday|last\s+night)\b", re.I), "-1"),
    (re.compile(r"\b(?:today|tonight|this\s+morning|this\s+evening)\b", re.I), "0"),
    (re.compile(r"\b(\d{1,2})\s+days?\s+ago\b", re.I), "ago"),
    (re.compile(rf"\blast\s+({_WEEKDAY_RE})\b", re.I), "last"),
    (re.compile(rf"\b(?:on\s+|this\s+)({_WEEKDAY_RE})\b", re.I), "on"),
]


def _make_date(year: int | None, month: int, day: int, today: date) -> date:
    try:
        found = date(year or today.year, month, day)
        if year is None and found > today:
            found = date(today.year - 1, month, day)
    except ValueError:
        raise ParseError(f"there is no day {day}/{month} (day/month)") from None
    return found


def _find_date(text: str, today: date) -> tuple[str, date | None]:
    for pattern, kind in _DATE_RES:
        m = pattern.search(text)
        if not m:
            continue
        g = m.groups()
        if kind == "iso":
            found = _make_date(int(g[0]), int(g[1]), int(g[2]), today)
        elif kind == "dm":
            found = _make_date(int(g[2]) if g[2] else None, _MONTHS[g[1].lower()], int(g[0]), today)
        elif kind == "md":
            found = _make_date(int(g[2]) if g[2] else None, _MONTHS[g[0].lower()], int(g[1]), today)
        elif kind == "d/m":
            found = _make_date(int(g[2]) if g[2] else None, int(g[1]), int(g[0]), today)
        elif kind in ("-2", "-1", "0"):
            found = today + timedelta(days=int(kind))
        elif kind == "ago":
            found = today - timedelta(days=int(g[0]))
        else:
            back = (today.weekday() - _WEEKDAYS[g[0].lower()]) % 7
            if kind == "last" and back == 0:
                back = 7
            found = today - timedelta(days=back)
        return text[: m.start()] + " " + text[m.end() :], found
    return text, None


# --- people --------------------------------------------------------------------------------


class _People:
    def __init__(self, members: Sequence[MemberRef], me: str) -> None:
        self.members = list(members)
        self.me = me
        self.full: dict[tuple[str, ...], list[int]] = {}
        self.first: dict[str, list[int]] = {}
        for i, m in enumerate(self.members):
            words = tuple(re.findall(r"[\w'-]+", m.name.lower()))
            if words:
                self.full.setdefault(words, []).append(i)
                self.first.setdefault(words[0], []).append(i)
        self.by_email = {m.email.lower(): i for i, m in enumerate(self.members) if m.email}
        self.index = {m.id: i for i, m in enumerate(self.members)}
        self.longest = max((len(k) for k in self.full), default=1)

    def prefix(self, word: str) -> list[int]:
        found: set[int] = set()
        for i, m in enumerate(self.members):
            if any(w.startswith(word) for w in re.findall(r"[\w'-]+", m.name.lower())):
                found.add(i)
        return sorted(found)


_TOKEN_RE = re.compile(
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+|[A-Z]\d+|[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))*|\S"
)


def _people_pass(work: str, people: _People, lowercase_text: bool) -> tuple[str, list[str]]:
    """Replace people with ``M<i>`` (``i`` = index in members; the caller = their index)."""
    tokens = _TOKEN_RE.findall(work)
    out: list[str] = []
    unknown: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        low = tok.lower().replace("’", "'")
        poss = ""
        if low.endswith("'s") and len(low) > 2:
            low, poss = low[:-2], " 's"
        if re.fullmatch(r"[A-Z]\d+", tok):
            out.append(tok)
            i += 1
            continue
        if "@" in low:
            if low in people.by_email:
                out.append(f"M{people.by_email[low]}")
            else:
                raise ParseError(f"nobody in this group has the email {tok}")
            i += 1
            continue
        if low in _ME and people.me in people.index:
            out.append(f"M{people.index[people.me]}{poss}")
            i += 1
            continue
        # the longest full name first ("Bob Smith"), then a first name, then a prefix
        matched = False
        for n in range(min(people.longest, len(tokens) - i), 1, -1):
            words = tuple(t.lower() for t in tokens[i : i + n])
            last = words[-1]
            lposs = ""
            if last.endswith("'s"):
                words, lposs = (*words[:-1], last[:-2]), " 's"
            hits = people.full.get(words)
            if hits and len(hits) == 1:
                out.append(f"M{hits[0]}{lposs}")
                i += n
                matched = True
                break
        if matched:
            continue
        if not low.isalpha() and not re.fullmatch(r"[\w'-]+", low):
            out.append(tok)
            i += 1
            continue
        capital = tok[:1].isupper() and low not in ("i",)
        hits = people.first.get(low) or people.full.get((low,)) or []
        mid = capital and bool(out) and out[-1] not in (".", "!", "?")
        if (
            not hits
            and len(low) >= 2
            and (low not in _VOCAB or mid)
            and (capital or lowercase_text)
        ):
            hits = people.prefix(low)
        if len(hits) == 1:
            out.append(f"M{hits[0]}{poss}")
        elif len(hits) > 1:
            names = ", ".join(people.members[h].name for h in hits)
            raise ParseError(f"'{tok}' could be {names}: write the full name")
        else:
            if capital and low not in _VOCAB:
                unknown.append(tok)
                out.append(f"U{len(unknown) - 1}{poss}")
            else:
                out.append(low + poss)
        i += 1
    return " ".join(out), unknown


# --- the grammar ---------------------------------------------------------------------------

_M = r"M\d+"
_LIST = rf"{_M}(?:\s*(?:,|and|&|\+|or)\s*{_M})*"
_LIST_RE = re.compile(_M)


def _ids(chunk: str) -> list[int]:
    return [int(x[1:]) for x in _LIST_RE.findall(chunk)]


@dataclass
class _Reading:
    amounts: list[tuple[int, str | None, int]]  # (minor units before currency known, code, pos)
    percents: list[int]  # basis points
    ratios: list[list[int]]


def parse_expense(
    text: str,
    *,
    members: Sequence[MemberRef],
    me: str,
    today: date,
    currency: str,
) -> Proposal:
    """Read one expense from ``text``; refuse with ``ParseError`` what is not certain."""
    if not isinstance(text, str) or not text.strip():
        raise ParseError("the text is empty: say what was paid, how much and by whom")
    if len(text) > MAX_TEXT:
        raise ParseError(f"the text is longer than {MAX_TEXT} characters")
    if not members:
        raise ParseError("the group has no members")
    people = _People(members, me)
    warnings: list[str] = []
    work = " " + re.sub(r"\s+", " ", text.strip()) + " "
    work = work.replace("’", "'")
    # upper-case letter + digits is the placeholders' shape: the text's own ("room M1") are
    # lower-cased so that they stay words
    work = re.sub(r"\b([A-Z])(\d+)\b", lambda m: m.group(1).lower() + m.group(2), work)

    # 1. even splits that look like numbers ("50/50"), then the date
    work = re.sub(r"\b(?:50/50|50-50|fifty[- ]fifty|half and half)\b", " evenly ", work, flags=re.I)
    work, when = _find_date(work, today)

    # 2. head counts ("split 3 ways", "lunch for 3:") are not amounts; then ratios, weights,
    # percents, amounts
    work = re.sub(
        r"\b(?:split\s+)?\d{1,2}\s*(?:-\s*)?ways?\b|\bfor\s+\d{1,2}(?:\s+(?:people|persons|of us))?"
        r"\s*(?=:)|\bfor\s+\d{1,2}\s+(?:people|persons|of us)\b",
        " ",
        work,
        flags=re.I,
    )
    ratios: list[list[int]] = []

    def _ratio(m: re.Match[str]) -> str:
        ratios.append([int(x) for x in re.split(r"\s?:\s?", m.group(1))])
        return f" R{len(ratios) - 1} "

    work = _RATIO_RE.sub(_ratio, work)
    percents: list[int] = []

    def _percent(m: re.Match[str]) -> str:
        value, places = _decimal(m.group("num"), 2)
        if places > 2:
            raise ParseError(f"'{m.group(0).strip()}' has more precision than 0.01 %")
        percents.append(value * 10 ** (2 - places))
        return f" P{len(percents) - 1} "

    work = _PERCENT_RE.sub(_percent, work)
    weights_num: list[int] = []

    def _weight(m: re.Match[str]) -> str:
        weights_num.append(int(next(g for g in m.groups() if g)))
        return f" W{len(weights_num) - 1} "

    work = _WEIGHT_NUM_RE.sub(_weight, work)
    raw_amounts: list[tuple[str, str | None, bool]] = []
    pieces: list[str] = []
    pos = 0
    for num in _NUMBER_RE.finditer(work):
        if num.start() < pos:
            continue
        start, stop, code = num.start(), num.end(), None
        before = _BEFORE_RE.search(work[max(0, start - 6) : start])
        after = _AFTER_RE.match(work, stop)
        for mark, is_before in ((before, True), (after, False)):
            if mark is None:
                continue
            word = mark.group("mark")
            found = _currency_of(word)
            if found and code is None:
                code = found
                if is_before:
                    start = max(0, start - 6) + mark.start()
                else:
                    stop = mark.end()
        pieces.append(work[pos:start])
        pieces.append(f" A{len(raw_amounts)} ")
        raw_amounts.append((num.group("num"), code, bool(num.group("k"))))
        pos = stop
    pieces.append(work[pos:])
    work = "".join(pieces)

    # currency: the text's, or the group's
    codes = {c for _, c, _ in raw_amounts if c}
    dollar = "USD" if currency not in _DOLLARS else currency
    codes = {dollar if c == "$" else c for c in codes}
    if currency == "CNY" and "JPY" in codes and "¥" in text:
        codes = (codes - {"JPY"}) | {"CNY"}
    if len(codes) > 1:
        raise ParseError(f"the text has amounts in several currencies ({', '.join(sorted(codes))})")
    cur = codes.pop() if codes else currency
    if cur != currency:
        warnings.append(f"the amount is in {cur}, the group's currency is {currency}")
    amounts: list[int] = []
    for raw, _, k in raw_amounts:
        try:
            amounts.append(_minor(raw, cur, k))
        except MoneyError as e:
            raise ParseError(str(e)) from None

    # 3. people
    m: re.Match[str] | None
    lowercase_text = text == text.lower()
    work, unknown = _people_pass(work, people, lowercase_text)
    s = " " + work + " "
    s = re.sub(r"\s+", " ", s)
    me_i = people.index.get(me)
    if me_i is None:
        raise ParseError("you are not a member of this group")

    # an unknown capitalised word where a person is expected
    slot = re.search(
        rf"(?:\b(?:with|between|among|amongst|by|except|but|excluding|minus|without|and|,|&)\s+"
        rf"(U\d+))|(?:^\s*(U\d+)(?:\s+'s)?\s+(?:paid|had|owes|pays|covered|bought|and|ordered))|"
        rf"(?:{_M}\s*(?:,|and|&)\s*(U\d+))",
        s,
    )
    if slot:
        u = int((slot.group(1) or slot.group(2) or slot.group(3))[1:])
        raise ParseError(f"nobody in this group is called '{unknown[u]}'")
    s = re.sub(r"U(\d+)", lambda m: unknown[int(m.group(1))].lower(), s)

    n = len(members)
    everyone = list(range(n))
    used: set[int] = set()  # amount placeholders already read as something else

    # owing someone: "I owe Bob 20" = Bob paid 20 for me
    payers: list[tuple[int, int | None]] = []
    participants: list[int] | None = None
    exact: dict[int, int] = {}
    percent: dict[int, int] = {}
    weights: dict[int, int] = {}
    items: list[tuple[int, int, str]] = []
    m = re.search(rf"({_LIST}) owes? ({_M}) (?:for \S+ )?A(\d+)", s)
    if m:
        debtors, creditor, a = _ids(m.group(1)), int(m.group(2)[1:]), int(m.group(3))
        payers.append((creditor, amounts[a]))
        participants = debtors
        used.add(a)
        s = s[: m.start()] + " ; " + s[m.end() :]

    # exact shares: "Bob owes 30", "Bob pays 30", "Bob's share is 30"
    for hit in re.finditer(
        rf"({_M}) (?:owes|owe|pays|pay|should pay|covers|'s share is|share is|'s part is) A(\d+)", s
    ):
        who, a = int(hit.group(1)[1:]), int(hit.group(2))
        if a in used:
            continue
        exact[who] = exact.get(who, 0) + amounts[a]
        used.add(a)
    # items: "Bob had the steak for 25", "Bob's wine was 20"
    for hit in re.finditer(
        rf"({_M})(?: 's| had| ordered| got| took| ate| drank)+ ((?:(?!A\d|{_M}|,|;|\band\b).)*?)"
        r"\s*(?:for|at|costing|worth|was|which was|is|=|:|of)?\s*A(\d+)",
        s,
    ):
        who, what, a = int(hit.group(1)[1:]), hit.group(2).strip(), int(hit.group(3))
        if a in used or re.search(rf"{_M}\s*(?:and|&)\s*$", s[: hit.start()]):
            continue  # an exact share, or "Bob, Ann and I had sushi for 66" (all of them)
        what = re.sub(r"^(?:the|a|an|some|his|her|their|my)\s+", "", what)
        items.append((who, amounts[a], what))
        used.add(a)
    # percentages
    for hit in re.finditer(
        rf"({_M}) (?:owes |owe |pays |pay |covers |takes |gets |: )?P(\d+)"
        rf"|P(\d+) (?:for|to|from|by|of) ({_M})",
        s,
    ):
        who = int((hit.group(1) or hit.group(4))[1:])
        percent[who] = percent.get(who, 0) + percents[int(hit.group(2) or hit.group(3))]
    if percents and not percent:
        raise ParseError("a percentage must say whose it is, like 'Bob owes 30%'")
    # weights
    factors = {"double": 2, "twice": 2, "triple": 3, "thrice": 3, "quadruple": 4}
    factors |= {"for two": 2, "for three": 3, "for four": 4, "as two": 2, "as three": 3}
    for hit in re.finditer(
        rf"({_M}) (?:pays |pay |owes |owe |counts |count |gets |takes |has |is |eats |ate )?"
        r"(?:(double|twice|triple|thrice|quadruple|(?:for|as) (?:two|three|four))|W(\d+))"
        r"(?: as much| shares?| the share)?",
        s,
    ):
        who = int(hit.group(1)[1:])
        weights[who] = factors[hit.group(2)] if hit.group(2) else weights_num[int(hit.group(3))]
    if ratios:
        m = re.search(rf"R(?P<r>\d+) (?:between |among |for |with |by )?(?:the )?(?P<l>{_LIST})", s)
        m = m or re.search(
            rf"(?P<l>{_LIST}) (?:split |in |by |at |with )?(?:the ratio |a ratio of )?R(?P<r>\d+)",
            s,
        )
        if not m:
            raise ParseError("a ratio like 2:1:1 must name the people it is for")
        r, who_list = ratios[int(m.group("r"))], _ids(m.group("l"))
        if len(r) != len(who_list):
            raise ParseError(f"the ratio has {len(r)} parts for {len(who_list)} people")
        weights.update(zip(who_list, r, strict=True))
        participants = who_list

    # payers: "Bob paid", "paid by Bob", "Bob paid 30 and Ann paid 60"
    if not payers:
        for hit in re.finditer(
            rf"({_LIST}) (?:paid|payed|covered|bought|fronted|spent|put in|put down|picked up|"
            rf"settled|got)(?: the (?:bill|check|tab|cheque))?(?: for)?(?: A(\d+)( each)?)?",
            s,
        ):
            who_list = _ids(hit.group(1))
            paid_a: int | None = int(hit.group(2)) if hit.group(2) else None
            if paid_a is not None and paid_a in used:
                paid_a = None
            if paid_a is not None:
                used.add(paid_a)
                if len(who_list) > 1 and not hit.group(3):
                    for w, part in zip(
                        who_list, allocate(amounts[paid_a], [1] * len(who_list)), strict=True
                    ):
                        payers.append((w, part))
                    continue
            for w in who_list:
                payers.append((w, amounts[paid_a] if paid_a is not None else None))
        m = re.search(rf"\b(?:paid|covered|bought|fronted) by ({_LIST})", s)
        if m and not payers:
            payers = [(w, None) for w in _ids(m.group(1))]
        m = re.search(rf"\b(?:on|thanks to) ({_M})\b(?! 's)", s)
        if (
            m
            and not payers
            and re.search(rf"\b(?:was|is|'s) on ({_M})|\bon ({_M}) *(?:[.;,]|$)", s)
        ):
            payers = [(int(m.group(1)[1:]), None)]

    # participants
    excluded: set[int] = set()
    m = re.search(
        rf"\b{_ALL_WORDS} (?:but|except|except for|apart from|minus|other than|excluding|"
        rf"without|bar|save) ({_LIST})",
        s,
    )
    if m:
        excluded = set(_ids(m.group(1)))
        participants = [i for i in everyone if i not in excluded]
        s = s[: m.start()] + " ; " + s[m.end() :]
    else:
        m = re.search(rf"\b(?:except|excluding|but not|not|without|minus) (?:for )?({_LIST})", s)
        if m:
            excluded = set(_ids(m.group(1)))
    # "Bob doesn't drink", "Ann wasn't there": not sharing
    for hit in re.finditer(
        rf"({_LIST}) (?:doesn't|does not|didn't|did not|don't|do not|wasn't|was not|weren't|"
        r"were not|isn't|is not|won't|will not)\b",
        s,
    ):
        excluded |= set(_ids(hit.group(1)))
    with_list: list[int] = []
    for hit in re.finditer(rf"\b(?:with|between|among|amongst|along with|and) ({_LIST})", s):
        if re.match(r"\s*and", s[hit.start() :]) and not re.search(
            r"\b(?:with|between|among|amongst)\s*$", s[: hit.start()]
        ):
            continue
        with_list += _ids(hit.group(1))
    for_list: list[int] = []
    m = re.search(rf"\bfor ({_LIST})(?!\s*(?:had|owes?|paid|pays?)\b)", s)
    if m:
        for_list = _ids(m.group(1))
    subject: list[int] = []
    m = re.search(
        rf"^\s*({_LIST}) (?:had|split|shared|went|ate|got|took|grabbed|bought|paid for)", s
    )
    # or a bare list after a colon: "lunch for 3: me, Bob and Carl, 36"
    m = m or re.search(rf":\s*({_LIST})\s*(?:[,;.]|A\d+|$)", s)
    if m and len(_ids(m.group(1))) > 1:
        subject = _ids(m.group(1))
    says_all = bool(re.search(rf"\b{_ALL_WORDS}\b", s))

    if participants is None:
        if with_list:
            participants = [me_i, *with_list, *(p for p, _ in payers)]
            if re.search(rf"\b(?:between|among|amongst) ({_LIST})", s) and not re.search(
                r"\bwith\b", s
            ):
                participants = list(with_list)
        elif for_list:
            participants = for_list
        elif subject:
            participants = subject
        else:
            participants = everyone
            if not says_all and n > 2 and not (items or exact or percent or weights):
                warnings.append("nobody named: split among everyone in the group")
        participants = [*participants, *(w for w, _, _ in items), *exact, *percent, *weights]
    wanted = set(participants) - excluded
    parts = [i for i in everyone if i in wanted]
    if not parts:
        raise ParseError("nobody is left to share the expense")

    # the total: an amount nothing else claimed, or the sum of what the payers paid
    free = [a for a in range(len(amounts)) if a not in used]
    paid_amounts = [x for _, x in payers if x is not None]
    total: int | None
    if free:
        total = amounts[free[0]]
        if len(free) > 1:
            warnings.append(
                f"several amounts in the text; the total is the first one ({total} minor units)"
            )
    elif paid_amounts and len(paid_amounts) == len(payers):
        total = sum(paid_amounts)
    elif items and not exact and not percent:
        total = sum(x for _, x, _ in items)
    elif exact and not items:
        total = sum(exact.values())
    else:
        total = None
    # a single payer's "I paid 90" is the total too
    if len(payers) == 1 and payers[0][1] is not None and len(free) <= 1:
        total = payers[0][1] if not free else total
    if total is None:
        raise ParseError("no amount: say how much was paid, like 'I paid 30 for lunch'")
    if total <= 0:
        raise ParseError("the amount must be more than zero")

    # who paid
    if not payers:
        payers = [(me_i, None)]
        if not re.search(r"\b(?:paid|pay|bought|covered)\b", s):
            warnings.append("no payer named: you paid")
    merged: dict[int, int | None] = {}
    for who, x in payers:
        merged[who] = x if who not in merged else (merged[who] or 0) + (x or 0)
    known = [x for x in merged.values() if x is not None]
    if len(known) == len(merged):
        if sum(known) != total:
            raise ParseError(
                f"the payers' amounts add up to {sum(known)}, not the total of {total} "
                "(minor units)"
            )
        paid_by = [(members[w].id, x) for w, x in merged.items() if x]
    elif not known:
        split_pay = allocate(total, [1] * len(merged))
        paid_by = [(members[w].id, x) for w, x in zip(merged, split_pay, strict=True)]
        if len(merged) > 1:
            warnings.append("several payers without amounts: they paid equal parts")
    else:
        rest = total - sum(known)
        missing = [w for w, x in merged.items() if x is None]
        if rest < 0:
            raise ParseError("the payers' amounts add up to more than the total")
        for w, x in zip(missing, allocate(rest, [1] * len(missing)), strict=True):
            merged[w] = x
        paid_by = [(members[w].id, x or 0) for w, x in merged.items() if x]

    ids = [m_.id for m_ in members]
    split = _split(total, parts, items, exact, percent, weights, ids, warnings)

    # description and category
    category = "general"
    cat = _CATEGORY_RE.search(text.lower())
    if cat:
        category = _CATEGORY_OF[cat.group(1)]
    description = _describe(s, cat.group(1) if cat else None)
    if when is None:
        when = today
    proposal = Proposal(
        description=description,
        amount=total,
        currency=cur,
        date=when,
        category=category,
        paid_by=paid_by,
        split=split,
        warnings=warnings,
    )
    try:
        owed(proposal, ids)
    except DomainError as e:
        raise ParseError(e.message) from None
    return proposal


def _split(
    total: int,
    parts: list[int],
    items: list[tuple[int, int, str]],
    exact: dict[int, int],
    percent: dict[int, int],
    weights: dict[int, int],
    ids: list[str],
    warnings: list[str],
) -> ExpenseSplit:
    kinds = [
        k
        for k, v in (("items", items), ("exact", exact), ("percent", percent), ("weights", weights))
        if v
    ]
    if len(kinds) > 1:
        raise ParseError(f"the text mixes {' and '.join(kinds)}: use one way to split")
    if items:
        claimed = sum(x for _, x, _ in items)
        rest = total - claimed
        if rest < 0:
            raise ParseError(
                f"the items add up to {claimed}, more than the total of {total} (minor units)"
            )
        lines = [Item(amount=x, user_ids=(ids[w],), description=what) for w, x, what in items]
        if rest:
            lines.append(
                Item(amount=rest, user_ids=tuple(ids[p] for p in parts), description="the rest")
            )
        return ExpenseSplit(method="itemized", items=tuple(lines))
    if exact:
        given = sum(exact.values())
        others = [p for p in parts if p not in exact]
        rest = total - given
        if rest < 0 or (rest > 0 and not others):
            off = "over" if rest < 0 else "short of"
            raise ParseError(
                f"the shares add up to {given}, {abs(rest)} {off} the total of {total} "
                "(minor units)"
            )
        shares = dict(exact)
        if others and rest:
            for p, x in zip(others, allocate(rest, [1] * len(others)), strict=True):
                shares[p] = x
        return ExpenseSplit(
            method="exact",
            shares=tuple(Share(ids[p], shares[p]) for p in sorted(shares) if shares[p]),
        )
    if percent:
        given = sum(percent.values())
        others = [p for p in parts if p not in percent]
        if given > 10_000 or (given < 10_000 and not others):
            raise ParseError(f"the percentages add up to {_percent_text(given)} %, not 100 %")
        if given < 10_000 and len(others) == 1:
            percent = {**percent, others[0]: 10_000 - given}
            given = 10_000
        if given == 10_000:
            return ExpenseSplit(
                method="percent",
                shares=tuple(Share(ids[p], percent[p]) for p in sorted(percent) if percent[p]),
            )
        # the rest evenly among the others: weights in 1/10000 × number of others
        w = {p: bps * len(others) for p, bps in percent.items()}
        for p in others:
            w[p] = 10_000 - given
        return ExpenseSplit(
            method="shares", shares=tuple(Share(ids[p], w[p]) for p in sorted(w) if w[p])
        )
    if weights:
        w = {p: weights.get(p, 1) for p in parts}
        for p, x in weights.items():
            w.setdefault(p, x)
        return ExpenseSplit(
            method="shares", shares=tuple(Share(ids[p], w[p]) for p in sorted(w) if w[p])
        )
    return ExpenseSplit(method="equal", shares=tuple(Share(ids[p]) for p in parts))


def _percent_text(bps: int) -> str:
    whole, frac = divmod(bps, 100)
    return f"{whole}.{frac:02d}".rstrip("0").rstrip(".") if frac else str(whole)


_STOP = (
    r"(?:with|between|among|amongst|and|at|on|split|paid|evenly|equally|for|in|to|from|by|"
    r"but|except|yesterday|today|last|[;,.!?]|A\d+|M\d+|P\d+|R\d+|W\d+|$)"
)


def _describe(s: str, keyword: str | None) -> str:
    m = re.search(rf"\bfor (?:the |a |an |our |some |my )?((?:(?!{_STOP}\b)[a-z][\w'-]*\s?)+)", s)
    if m is None:
        m = re.search(rf"^\s*(?:the |a |an |our |some )?((?:(?!{_STOP}\b)[a-z][\w'-]*\s?)+)", s)
        if m and m.group(1).split()[0] in {"i", "we", "paid", "had"}:
            m = None
    if m:
        words = m.group(1).split()
        text = " ".join(w for w in words if w not in {"the", "a", "an"}).strip()
        if text and text not in {"it", "this", "that", "everyone", "us", "all"}:
            return text[:1].upper() + text[1:]
    if keyword:
        return keyword[:1].upper() + keyword[1:]
    return "Expense"
