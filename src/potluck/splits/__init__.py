"""Split rules and their allocation: pure functions, no I/O.

A rule set is a list of ``percent`` (basis points of the order amount) and ``fixed`` (minor
units) parts per party plus ``remainder_to``, the party that receives whatever is left: the
rounding remainders of the percent parts and any share nobody was given. ``allocate_split``
always returns parts that sum exactly to the amount.
"""

from potluck.splits.rules import (
    MAX_BPS,
    MAX_RULES,
    SplitError,
    SplitRule,
    SplitRules,
    allocate_split,
    validate_rules,
)

__all__ = [
    "MAX_BPS",
    "MAX_RULES",
    "SplitError",
    "SplitRule",
    "SplitRules",
    "allocate_split",
    "validate_rules",
]
