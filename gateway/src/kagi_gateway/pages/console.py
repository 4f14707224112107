"""What the consoles (MyPage, 権限管理, 託送受付センター) share on top of the hosted pages: Japan-time filters for the
templates, a one-time notice carried to the next page (post → redirect → get), the confirmation step every
destructive action passes, and the copy button's script (the only page script, allowed on the pages that ask)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from litestar import Request, get
from litestar.handlers import HTTPRouteHandler
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template

from kagi_gateway.deps import PUBLIC
from kagi_gateway.pages.forms import TEMPLATES, Refusal, Refused, body_of, operate, page, see_other
from kagi_gateway.pages.session import page_session
from kagi_gateway.services import Services
from kagi_shared.jst import jp_datetime, jp_deadline, jp_slash_date

NOTICE = "notice"
COPY_SCRIPT = (TEMPLATES / "copy.js").read_text(encoding="utf-8")


def _moment(value: Any) -> datetime | None:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if isinstance(value, datetime) else None


def jst(value: Any) -> str:
    moment = _moment(value)
    return jp_datetime(moment) if moment else "—"


def deadline(value: Any) -> str:
    moment = _moment(value)
    return jp_deadline(moment) if moment else "—"


def slash_date(value: Any) -> str:
    if isinstance(value, str):
        value = date.fromisoformat(value[:10]) if len(value) == 10 else _moment(value)
    return jp_slash_date(value) if isinstance(value, date) else "—"


def register_filters(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters.update({"jst": jst, "deadline": deadline, "slash_date": slash_date})


def tell(request: Request[Any, Any, Any], text: str, refused: bool = False) -> None:
    """A notice for the page the browser is sent to next (shown once); ``refused``: the action was not done."""
    page_session(request).data[NOTICE] = {"text": text, "refused": refused}


async def act(handler: HTTPRouteHandler, request: Request[Any, Any, Any], services: Services,
              fields: dict[str, Any] | None = None, dto: type[Any] | None = None, *, back: str,
              done: str | Callable[[Any], str], onward: Callable[[Any], str] | None = None, **params: Any) -> Redirect:
    """A console button's post: run the API route (with ``fields`` as its ``dto``), then send the browser ``back``
    with a notice of the outcome: ``done`` (a text, or one made from the answer) or the API's reason for refusing.
    ``onward``: where a done action leads instead (made from the answer)."""
    try:
        data = body_of(fields, dto) if fields is not None and dto is not None else None
        answer = await operate(handler, request, services, data, **params)
    except Refused as refused:
        tell(request, refused.refusal.message, refused=True)
        return see_other(back)
    tell(request, done(answer) if callable(done) else done)
    return see_other(onward(answer) if onward else back)


def console_page(template: str, request: Request[Any, Any, Any], **context: Any) -> Template:
    """A console page with the notice the previous post left, if any."""
    notice = page_session(request).data.pop(NOTICE, None)
    refusal = context.pop("refusal", None)
    return page(template, request, status_code=refusal.status if refusal else 200, notice=notice, refusal=refusal,
                errors=refusal.fields if refusal else {}, **context)


def confirm_page(request: Request[Any, Any, Any], title: str, question: str, action: str, button: str,
                 back: str, hidden: dict[str, str] | None = None, reason: str | None = None,
                 refusal: Refusal | None = None) -> Template:
    """The confirmation step of a destructive action: the question, one button that posts, one link back
    (``reason``: the label of a reason the action needs)."""
    return console_page("console_confirm.html", request, title=title, question=question, action=action,
                        button=button, back=back, hidden=hidden or {}, reason=reason, refusal=refusal)


def allow_copy_script(request: Request[Any, Any, Any]) -> None:
    """This page loads /static/copy.js (the header's policy then allows the site's own script)."""
    request.scope.setdefault("state", {})["page_script"] = True


@get("/static/copy.js", opt={"roles": PUBLIC}, media_type="text/javascript", include_in_schema=False)
async def copy_script() -> str:
    return COPY_SCRIPT
