"""Identity routes (to be written)."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["identity"])
