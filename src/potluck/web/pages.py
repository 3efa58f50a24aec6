"""What every page uses: templates, the signed-in person, CSRF, flash messages, errors.

A page route looks like this (see README.md beside this file)::

    @router.get("/things")
    def things(request: Request, user: CurrentWebUser) -> Response:
        return render(request, "things.html", things=...)

    @router.post("/things")
    def create(request: Request, user: CurrentWebUser, form: CheckedForm) -> Response:
        try:
            url = run_once(app_of(request), user_id=user.id, key=form.get("idempotency_key"),
                           effect=lambda s: ...)
        except DomainError as exc:
            return render(request, "things.html", status_code=422, errors=field_errors(exc))
        return redirect(url, flash="Created.")
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from potluck.bootstrap import Potluck
from potluck.errors import DomainError
from potluck.money import MoneyError, format_money
from potluck.web import sessions
from potluck.web.forms import new_form_key
from potluck.web.sessions import WebUser

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
CSRF_COOKIE = "potluck_csrf"
FLASH_COOKIE = "potluck_flash"
CSRF_HEADER = "x-csrf-token"
# Paths that are the API's (problem+json errors), not pages.
API_PREFIXES = ("/v1", "/sandbox", "/healthz", "/readyz", "/metrics", "/docs", "/openapi", "/redoc")


def app_of(request: Request) -> Potluck:
    app: Potluck = request.app.state.potluck
    return app


def is_page(request: Request) -> bool:
    """True for a web page (HTML errors), False for the API (problem+json)."""
    path = request.url.path
    return not path.startswith(API_PREFIXES)


def secure_cookies(app: Potluck) -> bool:
    return app.settings.public_base_url.lower().startswith("https://")


# --- formatting -------------------------------------------------------------------------


def money(amount: int | None, currency: str) -> str:
    """Minor units as people read them, via Babel (potluck.money)."""
    if amount is None:
        return ""
    return format_money(int(amount), currency)


def money_input(amount: int | None, currency: str) -> str:
    """Minor units as the plain decimal a form field holds (1250 EUR → "12.50")."""
    if amount is None:
        return ""
    from potluck.money import exponent

    exp = exponent(currency)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(int(amount)), 10**exp) if exp else (abs(int(amount)), 0)
    return f"{sign}{whole}.{frac:0{exp}d}" if exp else f"{sign}{whole}"


def when(value: datetime | date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return value.isoformat()


templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["money"] = money
templates.env.filters["money_input"] = money_input
templates.env.filters["when"] = when
templates.env.globals["new_form_key"] = new_form_key


# --- who is signed in -------------------------------------------------------------------


class SignInRequired(Exception):
    """Raised by ``CurrentWebUser`` for a visitor who is not signed in."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class CsrfRefused(Exception):
    """A POST whose CSRF token is missing or wrong: the 403 page."""


async def optional_web_user(request: Request) -> WebUser | None:
    """The signed-in person, or None (looked up once per request)."""
    if hasattr(request.state, "web_user"):
        cached: WebUser | None = request.state.web_user
        return cached
    token = request.cookies.get(sessions.COOKIE)
    user = await anyio.to_thread.run_sync(sessions.load_session, app_of(request), token)
    request.state.web_user = user
    return user


async def current_web_user(
    request: Request, user: Annotated[WebUser | None, Depends(optional_web_user)]
) -> WebUser:
    if user is None:
        target = "/"
        if request.method == "GET":
            target = request.url.path + ("?" + request.url.query if request.url.query else "")
        raise SignInRequired(target)
    return user


OptionalWebUser = Annotated[WebUser | None, Depends(optional_web_user)]
CurrentWebUser = Annotated[WebUser, Depends(current_web_user)]


def csrf_token(request: Request) -> str:
    """The token this request's forms must send back: the session's when signed in, else a
    per-browser one kept in the ``potluck_csrf`` cookie (double submit)."""
    user: WebUser | None = getattr(request.state, "web_user", None)
    if user is not None:
        return user.csrf_token
    token = getattr(request.state, "anon_csrf", None) or request.cookies.get(CSRF_COOKIE)
    if not token or len(token) > 100:
        token = secrets.token_urlsafe(32)
    request.state.anon_csrf = token
    return token


async def checked_form(
    request: Request, user: Annotated[WebUser | None, Depends(optional_web_user)]
) -> FormData:
    """The POSTed form, after its ``csrf_token`` field (or ``X-CSRF-Token`` header, htmx)
    was checked; a wrong or missing one is the 403 page and nothing runs."""
    form = await request.form()
    sent = form.get("csrf_token") or request.headers.get(CSRF_HEADER)
    expected = user.csrf_token if user is not None else request.cookies.get(CSRF_COOKIE)
    if not isinstance(sent, str) or not expected or not secrets.compare_digest(sent, expected):
        raise CsrfRefused()
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


# --- flash messages ---------------------------------------------------------------------


def _encode_flash(messages: list[dict[str, str]]) -> str:
    return base64.urlsafe_b64encode(json.dumps(messages).encode()).decode()


def _decode_flash(raw: str | None) -> list[dict[str, str]]:
    if not raw or len(raw) > 4000:
        return []
    try:
        data = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except ValueError:
        return []
    if not isinstance(data, list):
        return []
    return [
        {"kind": str(m.get("kind", "info")), "text": str(m.get("text", ""))}
        for m in data
        if isinstance(m, dict)
    ][:5]


def redirect(url: str, *, flash: str | None = None, kind: str = "success") -> Response:
    """303 to ``url`` (after a POST), with an optional message shown on the next page."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(
            FLASH_COOKIE,
            _encode_flash([{"kind": kind, "text": flash}]),
            httponly=True,
            samesite="lax",
            path="/",
        )
    return response


def safe_next(url: str | None, default: str = "/") -> str:
    """A local path to go to after signing in (never another site)."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return default
    return url


# --- rendering --------------------------------------------------------------------------


def sentence(message: str) -> str:
    """A service's message as a sentence for people: capital first letter, final stop."""
    message = message.strip()
    if not message:
        return message
    message = message[0].upper() + message[1:]
    return message if message[-1] in ".!?" else message + "."


def field_errors(exc: BaseException) -> dict[str, str]:
    """Errors by form field name (``"__all__"``: not about one field), in plain words."""
    if isinstance(exc, DomainError):
        return {exc.field or "__all__": sentence(exc.message)}
    if isinstance(exc, ValidationError | RequestValidationError):
        out: dict[str, str] = {}
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
            name = loc[0] if loc else "__all__"
            message = str(err.get("msg", "not valid")).removeprefix("Value error, ")
            out.setdefault(name, sentence(message))
        return out
    if isinstance(exc, MoneyError):
        return {"amount": sentence(str(exc))}
    return {"__all__": sentence(str(exc) or "something went wrong")}


def render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` with the layout's context: ``user``, ``csrf_token``,
    ``flashes``, ``errors`` (field → message), ``values`` (the form as sent), ``nav``."""
    user: WebUser | None = getattr(request.state, "web_user", None)
    token = csrf_token(request)
    flashes = _decode_flash(request.cookies.get(FLASH_COOKIE))
    ctx: dict[str, Any] = {
        "user": user,
        "csrf_token": token,
        "flashes": flashes,
        "errors": {},
        "values": {},
        "owns_platforms": _owns_platforms(request, user),
        "current_path": request.url.path,
    }
    ctx.update(context)
    response = templates.TemplateResponse(
        request, template, ctx, status_code=status_code, headers=dict(headers or {})
    )
    response.headers.setdefault("Cache-Control", "no-store")
    if flashes:
        response.delete_cookie(FLASH_COOKIE, path="/")
    if user is None and request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            httponly=True,
            samesite="lax",
            path="/",
            secure=secure_cookies(app_of(request)),
        )
    return response


def _owns_platforms(request: Request, user: WebUser | None) -> bool:
    if user is None:
        return False
    cached = getattr(request.state, "owns_platforms", None)
    if cached is None:
        from potluck.identity.service import list_platforms

        rows, _ = list_platforms(app_of(request), owner_user_id=user.id, limit=1)
        cached = bool(rows)
        request.state.owns_platforms = cached
    return bool(cached)


def not_found_page(request: Request) -> HTMLResponse:
    return render(request, "errors/404.html", status_code=404)


def forbidden_page(request: Request, message: str | None = None) -> HTMLResponse:
    return render(request, "errors/403.html", status_code=403, message=message)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "errors/error.html", status_code=status, message=message)


_UNEXPECTED = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Potluck</title></head>
<body><main><h1>{title}</h1><p>{message}</p>
<p>Nothing was changed by the request that failed. <a href="/dashboard">Back to the
dashboard</a>. Reference: <code>{request_id}</code></p></main></body></html>
"""


def unexpected_error_page(path: str, status: int, request_id: str) -> HTMLResponse | None:
    """The page for an exception no handler caught (the API's middleware asks): a plain page
    that needs neither templates nor the database, which may be what failed; None for API
    paths, which keep problem+json."""
    if path.startswith(API_PREFIXES):
        return None
    if status == 503:
        title, message = "Potluck is briefly unavailable", "Please try again in a moment."
    elif status == 409:
        title, message = "Someone changed this at the same time", "Please try again."
    else:
        title, message = "Something went wrong on our side", "We have logged it."
    return HTMLResponse(
        _UNEXPECTED.format(title=title, message=message, request_id=request_id),
        status_code=status,
    )


# --- wiring -----------------------------------------------------------------------------

Handler = Callable[[Request, Any], Awaitable[Response]]


def install(app: FastAPI) -> None:
    """Page errors as pages: 404/403 pages, sign-in redirects, the CSRF 403. API paths keep
    their problem+json handlers (delegated to)."""
    previous: dict[Any, Handler] = dict(app.exception_handlers)

    def _delegate(kind: Any) -> Handler:
        return previous[kind]

    async def _sign_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": "/signin"})
        return RedirectResponse("/signin?next=" + quote(exc.next_url, safe="/"), status_code=303)

    async def _csrf(request: Request, exc: Exception) -> Response:
        return await anyio.to_thread.run_sync(
            lambda: forbidden_page(
                request,
                "This form has expired or was not sent by this site. "
                "Go back, reload the page and try again.",
            )
        )

    async def _domain(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)
        if not is_page(request):
            return await _delegate(DomainError)(request, exc)
        if exc.status == 404:
            return await anyio.to_thread.run_sync(not_found_page, request)
        if exc.status == 403:
            return await anyio.to_thread.run_sync(forbidden_page, request, exc.message)
        return await anyio.to_thread.run_sync(error_page, request, exc.status, exc.message)

    async def _http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if not is_page(request) or exc.status_code not in (404, 405):
            return await _delegate(StarletteHTTPException)(request, exc)
        return await anyio.to_thread.run_sync(not_found_page, request)

    async def _validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if not is_page(request):
            return await _delegate(RequestValidationError)(request, exc)
        message = "; ".join(f"{k}: {v}" for k, v in field_errors(exc).items())
        return await anyio.to_thread.run_sync(error_page, request, 422, message)

    app.state.unexpected_error_page = unexpected_error_page
    app.add_exception_handler(SignInRequired, _sign_in)
    app.add_exception_handler(CsrfRefused, _csrf)
    app.add_exception_handler(DomainError, _domain)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
