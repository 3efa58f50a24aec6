"""HTTP routes of the payments product."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
