"""How a page runs an operation: the very route handler the JSON API runs, with the form as its body.

A page never calls a service itself: it converts the form into the controller's own request type (the same
validation) and calls the controller's handler, so the API and the pages cannot drift apart. A refusal comes back
as the API's problem (machine code, Japanese title, field reasons) for the page to show next to its field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from litestar import MediaType, Request
from litestar.handlers import HTTPRouteHandler
from litestar.response import Redirect, Template

from kagi_gateway.deps import Call
from kagi_gateway.pages.session import CSRF_FIELD
from kagi_gateway.services import ForwardedProblem, Services
from kagi_shared.problems import Problem, field_error

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
INVALID = "入力内容に誤りがあります。"
REQUIRED = "入力してください。"


@dataclass
class Refusal:
    """The API's answer to a refused operation, as a page shows it."""

    status: int
    code: str
    message: str
    fields: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.code)
        self.refusal = refusal


def refusal_of(exc: Problem | ForwardedProblem) -> Refusal:
    if isinstance(exc, Problem):
        body = exc.body()
    else:
        try:
            body = exc.response.json()
        except ValueError:
            body = {"status": exc.response.status_code, "code": "service.error", "title": "サービスエラー"}
    fields: dict[str, str] = {}
    for error in body.get("errors") or []:
        name, reason = str(error.get("field", "body")), str(error.get("reason", ""))
        fields[name] = f"{fields[name]} {reason}" if name in fields else reason
    known = {"type", "title", "status", "code", "detail", "instance", "requestId", "errors"}
    return Refusal(status=int(body.get("status", 400)), code=str(body.get("code", "service.error")),
                   message=str(body.get("title", INVALID)), fields=fields,
                   extra={k: v for k, v in body.items() if k not in known})


async def form_of(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The posted fields as text (the CSRF token left out)."""
    form = await request.form()
    return {k: v.strip() if k in ("loginId", "email", "token") else v
            for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD}


def body_of(values: dict[str, Any], dto: type[Any]) -> Any:
    """The form's fields of the controller's request type (a page's own fields left out), converted with the
    API's validation; a field that does not fit is refused like the API refuses it."""
    names = {f.encode_name for f in msgspec.structs.fields(dto)}
    present = {k: v for k, v in values.items() if v not in (None, "") and k in names}
    try:
        return msgspec.convert(present, dto)
    except msgspec.ValidationError as exc:
        error = field_error(str(exc))
        reason = REQUIRED if "missing required field" in str(exc) or "length >= 1" in str(exc) else INVALID
        name = error.field
        if name == "body" and "`" in str(exc):
            name = str(exc).rsplit("`", 2)[-2]  # "Object missing required field `password`"
        raise Refused(Refusal(400, "request.invalid", INVALID, {name: reason})) from None


async def operate(handler: HTTPRouteHandler, request: Request[Any, Any, Any], services: Services,
                  data: Any = None, controller: Any = None, **params: Any) -> Any:
    """Run an API route's handler for a page (``params``: its path and query parameters; ``controller``: an
    instance for a handler that calls its controller's own helpers); a refusal is raised as ``Refused``."""
    kwargs: dict[str, Any] = {"call": Call.of(services, request), **params}
    if data is not None:
        kwargs["data"] = data
    try:
        return await handler.fn(controller, **kwargs)
    except (Problem, ForwardedProblem) as exc:
        raise Refused(refusal_of(exc)) from None


async def operate_form(handler: HTTPRouteHandler, request: Request[Any, Any, Any], services: Services,
                       dto: type[Any], values: dict[str, str] | None = None, **params: Any) -> Any:
    """``operate`` with the posted form (or ``values``) as the handler's ``dto``."""
    values = await form_of(request) if values is None else values
    return await operate(handler, request, services, body_of(values, dto), **params)


async def submit(handler: HTTPRouteHandler, request: Request[Any, Any, Any], services: Services, dto: type[Any],
                 *, again: str, values: dict[str, str] | None = None, **context: Any) -> Any:
    """Run an API route's handler with the posted form (or ``values``) as its ``dto``; a refusal shows the form
    ``again`` (that template, with ``context``) with the reasons next to its fields."""
    values = await form_of(request) if values is None else values
    try:
        return await operate_form(handler, request, services, dto, values)
    except Refused as refused:
        raise FormRefused(form_page(again, request, refused.refusal, values, **context)) from None


async def submit_for_message(handler: HTTPRouteHandler, request: Request[Any, Any, Any], services: Services,
                             dto: type[Any], *, again: str, title: str) -> Template:
    """``submit``, answered by the message page with the API's own message (``message``) under ``title``."""
    done = await submit(handler, request, services, dto, again=again)
    return message_page(request, title, done.message)


class FormRefused(Exception):
    """A posted form the API refused: the pages router answers with ``page`` (the form again, with reasons)."""

    def __init__(self, page: Template) -> None:
        super().__init__(page.template_name)
        self.page = page


def page(template: str, request: Request[Any, Any, Any], status_code: int = 200, **context: Any) -> Template:
    state = request.scope.get("state", {})
    session = state.get("page_session")  # none when the edge refused before the pages
    caller = state.get("caller")  # the roles the guard found the account holds (menus follow them)
    return Template(template_name=template, status_code=status_code, media_type=MediaType.HTML,
                    context={"csrf": session.csrf if session else "",
                             "signed_in": bool(session and session.get("accessToken")),
                            "roles": tuple(getattr(caller, "roles", ())), **context})


def form_page(template: str, request: Request[Any, Any, Any], refusal: Refusal | None = None,
              values: dict[str, str] | None = None, **context: Any) -> Template:
    """A form page; after a refusal, with the message and each field's reason next to it."""
    safe_values = {k: v for k, v in (values or {}).items() if "password" not in k.lower() and k != "key"}
    return page(template, request, status_code=refusal.status if refusal else 200, refusal=refusal,
                errors=refusal.fields if refusal else {}, values=safe_values, **context)


def message_page(request: Request[Any, Any, Any], title: str, message: str, status_code: int = 200,
                 code: str | None = None, links: list[tuple[str, str]] | None = None) -> Template:
    return page("message.html", request, status_code=status_code, title=title, message=message, code=code,
                links=links or [])


def refusal_page(request: Request[Any, Any, Any], title: str, refusal: Refusal,
                 links: list[tuple[str, str]] | None = None) -> Template:
    """The API's refusal as a page of its own: its message, status and machine code under ``title``."""
    return message_page(request, title, refusal.message, refusal.status, refusal.code, links=links)


def see_other(path: str) -> Redirect:
    return Redirect(path=path, status_code=303)
