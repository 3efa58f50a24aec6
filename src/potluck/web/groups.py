"""Sharing pages: groups, a group's expenses, balances, settle-up, charts, export, import."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
