"""ASGI entry point for uvicorn (``potluck serve`` uses it, also with several workers)."""

from __future__ import annotations

from fastapi import FastAPI

from potluck.api.app import create_app
from potluck.bootstrap import bootstrap


def app_factory() -> FastAPI:
    potluck = bootstrap()
    return create_app(potluck, run_workers=potluck.settings.embedded_workers)
