import re

from potluck import ids


def _reference(value: int) -> str:
    out = []
    for _ in range(26):
        out.append("0123456789ABCDEFGHJKMNPQRSTVWXYZ"[value & 31])
        value >>= 5
    return "".join(reversed(out))


def test_encoding_matches_the_digit_by_digit_definition():
    for value in (0, 1, 31, 32, 2**80 - 1, 2**128 - 1, 123456789 << 80 | 987654321):
        assert ids._encode(value) == _reference(value)


def test_ids_are_unique_sorted_and_well_formed():
    made = [ids.new_id("tr") for _ in range(5000)]
    assert len(set(made)) == len(made)
    assert made == sorted(made)
    assert all(re.fullmatch(r"tr_[0-9A-HJKMNP-TV-Z]{26}", i) for i in made)
