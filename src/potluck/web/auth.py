"""Sign up, sign in, sign out: the identity service's users, passwords and sign-in limits,
with a server-side session (sessions.py) instead of an access token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from potluck.identity import service as identity
from potluck.identity.tokens import decode_access_token
from potluck.web import sessions
from potluck.web.pages import (
    CheckedForm,
    OptionalWebUser,
    app_of,
    field_errors,
    redirect,
    render,
    safe_next,
    secure_cookies,
)

router = APIRouter(include_in_schema=False)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _signed_in(request: Request, user_id: str, next_url: str) -> Response:
    app = app_of(request)
    token = sessions.start_session(app, user_id=user_id)
    response = redirect(next_url)
    response.set_cookie(
        sessions.COOKIE,
        token,
        max_age=app.settings.web_session_ttl_seconds,
        httponly=True,
        samesite="lax",
        path="/",
        secure=secure_cookies(app),
    )
    return response


def _text(form: CheckedForm, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


@router.get("/signin")
def signin_page(request: Request, user: OptionalWebUser, next: str = "/dashboard") -> Response:
    if user is not None:
        return redirect(safe_next(next, "/dashboard"))
    return render(request, "auth/signin.html", next=safe_next(next, "/dashboard"))


@router.post("/signin")
def signin(request: Request, form: CheckedForm) -> Response:
    app = app_of(request)
    email, password = _text(form, "email"), _text(form, "password")
    next_url = safe_next(_text(form, "next"), "/dashboard")
    errors: dict[str, str] = {}
    if not email.strip():
        errors["email"] = "Enter your email address."
    if not password:
        errors["password"] = "Enter your password."  # noqa: S105 - a message
    if not errors:
        try:
            issued = identity.issue_token(
                app, email=email, password=password, client=_client(request)
            )
        except identity.IdentityError as exc:
            if exc.code == "invalid_credentials":
                errors["password"] = "The email or password is not correct."  # noqa: S105
            else:
                errors = field_errors(exc)
            headers = exc.problem_headers() if exc.status == 429 else None
            return render(
                request,
                "auth/signin.html",
                status_code=exc.status if exc.status == 429 else 422,
                errors=errors,
                values={"email": email},
                next=next_url,
                headers=headers,
            )
        user_id = decode_access_token(
            issued.access_token, key=identity.signing_key(app), now=app.clock.now()
        )
        if user_id is not None:
            return _signed_in(request, user_id, next_url)
        errors["__all__"] = "Signing in failed; try again."
    return render(
        request,
        "auth/signin.html",
        status_code=422,
        errors=errors,
        values={"email": email},
        next=next_url,
    )


@router.get("/signup")
def signup_page(request: Request, user: OptionalWebUser) -> Response:
    if user is not None:
        return redirect("/dashboard")
    return render(request, "auth/signup.html")


@router.post("/signup")
def signup(request: Request, form: CheckedForm) -> Response:
    app = app_of(request)
    values = {"name": _text(form, "name"), "email": _text(form, "email")}
    try:
        user = identity.register_user(
            app,
            email=values["email"],
            password=_text(form, "password"),
            name=values["name"],
            client=_client(request),
        )
    except identity.IdentityError as exc:
        errors = field_errors(exc)
        if exc.code == "email_taken":
            errors = {"email": "An account with this email already exists. Sign in instead."}
        return render(
            request,
            "auth/signup.html",
            status_code=exc.status if exc.status == 429 else 422,
            errors=errors,
            values=values,
        )
    response = _signed_in(request, user.id, "/dashboard")
    return response


@router.post("/signout")
def signout(request: Request, form: CheckedForm) -> Response:
    app = app_of(request)
    sessions.end_session(app, request.cookies.get(sessions.COOKIE))
    response = redirect("/signin", flash="You are signed out.", kind="info")
    response.delete_cookie(sessions.COOKIE, path="/", httponly=True, samesite="lax")
    return response
