"""The smallest Django project that runs django-hordak (database from BENCH_DATABASE_URL)."""

import os
from urllib.parse import unquote, urlparse

SECRET_KEY = "bench-only-not-a-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DEFAULT_CURRENCY = "EUR"
CURRENCIES = ["EUR"]
HORDAK_CURRENCIES = ["EUR"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "mptt",
    "hordak",
]


def _database(url: str) -> dict:
    u = urlparse(url)
    if u.scheme == "sqlite":
        name = u.path[1:] if u.path.startswith("//") else u.path
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": name}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": u.path.lstrip("/"),
        "USER": unquote(u.username or "postgres"),
        "PASSWORD": unquote(u.password or ""),
        "HOST": u.hostname or "127.0.0.1",
        "PORT": str(u.port or 5432),
        "CONN_MAX_AGE": None,  # one persistent connection per thread, like our pool
    }


DATABASES = {"default": _database(os.environ["BENCH_DATABASE_URL"])}
