"""The payout state machine as a table."""

from __future__ import annotations

import itertools

import pytest

from potluck.errors import DomainError
from potluck.payouts import states

ALLOWED = {
    ("pending", "processing"),
    ("pending", "failed"),
    ("processing", "completed"),
    ("processing", "failed"),
}


@pytest.mark.parametrize(("current", "target"), itertools.product(states.STATUSES, repeat=2))
def test_exactly_the_table_s_transitions_are_allowed(current, target):
    assert states.can_transition(current, target) is ((current, target) in ALLOWED)
    if (current, target) in ALLOWED:
        states.check_transition("po_1", current, target)
    else:
        with pytest.raises(states.InvalidPayoutTransition) as exc:
            states.check_transition("po_1", current, target)
        assert isinstance(exc.value, DomainError)
        assert (exc.value.code, exc.value.status) == ("invalid_payout_transition", 409)
        assert exc.value.problem_extra() == {"payout_status": current, "requested_status": target}


def test_terminal_states_lead_nowhere():
    assert {"completed", "failed"} == states.TERMINAL
    for terminal in states.TERMINAL:
        assert not any(states.can_transition(terminal, s) for s in states.STATUSES)


def test_every_status_has_its_event():
    assert states.EVENT_OF == {
        "pending": "payout.created",
        "processing": "payout.processing",
        "completed": "payout.completed",
        "failed": "payout.failed",
    }


def test_an_unknown_status_cannot_move():
    assert not states.can_transition("lost", "completed")
