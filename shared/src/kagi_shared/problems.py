"""RFC 9457 problem+json for every failure, with a stable machine code and field-level reasons.

Services raise ``Problem``; the Litestar handlers here render it, and turn framework
validation errors and anything unexpected into the same shape (never a bare 500 page).
Pure domain code raises ``Problem`` too, so this module imports Litestar only where a handler
needs it: a command-line tool that checks a rule does not load the web framework.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from litestar import Request, Response
    from litestar.exceptions import ValidationException

PROBLEM_JSON = "application/problem+json"


class FieldError(msgspec.Struct, frozen=True):
    field: str
    reason: str


class Problem(Exception):
    """A refusal the caller can act on: ``code`` is stable, ``title`` is for people (Japanese)."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str | None = None,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {title}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self, instance: str | None = None, request_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://kagi.example.jp/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
        }
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        if request_id:
            body["requestId"] = request_id
        if self.errors:
            body["errors"] = [{"field": e.field, "reason": e.reason} for e in self.errors]
        body.update(self.extra)
        return body


def problem_response(problem: Problem, request: Request[Any, Any, Any] | None = None) -> Response[Any]:
    from litestar import Response

    request_id = request.headers.get("x-request-id") if request is not None else None
    return Response(
        content=problem.body(request.url.path if request is not None else None, request_id),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


_AT_PATH = re.compile(r"^(?P<reason>.*?)(?: - at `\$\.?(?P<path>[^`]*)`)?$")
_UNKNOWN_FIELD = re.compile(r"unknown field `(?P<field>[^`]+)`")
# Litestar's words for a parameter that is absent (it raises before any field-level validation runs).
_MISSING_PARAMETER = re.compile(r"^Missing required (?P<kind>\w+) parameter '(?P<name>[^']+)'")


def field_error(message: str, default_field: str = "body") -> FieldError:
    """Turn a msgspec message (``Expected `int`, got `str` - at `$.limit` ``) into field + reason."""
    match = _AT_PATH.match(message)
    reason = match.group("reason") if match else message
    path = match.group("path") if match else None
    unknown = _UNKNOWN_FIELD.search(message)
    if unknown:
        return FieldError(unknown.group("field"), "未定義の項目です (unknown field)")
    return FieldError(path or default_field, reason)


def _validation_problem(exc: ValidationException) -> Problem:
    errors = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            source_key = str(item.get("key") or "body")
            default = "body" if source_key == "data" else source_key
            errors.append(field_error(str(item.get("message", "invalid")), default))
    missing = _MISSING_PARAMETER.match(str(exc.detail))
    if not errors and missing:
        errors.append(FieldError(missing.group("name"), f"必須の項目です (missing {missing.group('kind')} parameter)"))
    if not errors:
        errors.append(FieldError("body", str(exc.detail)))
    return Problem(400, "request.invalid", "入力内容に誤りがあります。", str(exc.detail), errors=errors)


def _handle_problem(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, Problem)
    return problem_response(exc, request)


def _handle_validation(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    from litestar.exceptions import ValidationException

    assert isinstance(exc, ValidationException)
    return problem_response(_validation_problem(exc), request)


def _handle_http(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    from litestar.exceptions import HTTPException, NotFoundException

    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if isinstance(exc, NotFoundException):
        problem = Problem(404, "not_found", "指定されたリソースが見つかりません。")
    elif status == 405:
        problem = Problem(405, "method_not_allowed", "このメソッドは使用できません。")
    elif status == 413:
        problem = Problem(413, "request.too_large", "リクエストが大きすぎます。")
    elif status == 401:
        problem = Problem(401, "auth.required", "ログインが必要です。")
    elif status == 403:
        problem = Problem(403, "auth.forbidden", "この操作を行う権限がありません。")
    else:
        problem = Problem(status, f"http.{status}", str(exc.detail))
    problem.headers.update(exc.headers or {})
    return problem_response(problem, request)


def _handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError

    from kagi_shared.breaker import DATABASE
    from kagi_shared.logging import get_logger

    log = get_logger(__name__)
    if isinstance(exc, ServerSelectionTimeoutError | ConnectionFailure):
        log.error("http.dependency_down", path=request.url.path, error=str(exc))
        DATABASE.trip()
        problem = service_unavailable()
    else:
        log.exception("http.unexpected", path=request.url.path)
        problem = Problem(500, "internal", "システムエラーが発生しました。")
    return problem_response(problem, request)


SERVICE_UNAVAILABLE = "service.unavailable"
"""The code of a 503 that judged nothing: a service, or the database behind it, could not be reached."""


def service_unavailable(service: str | None = None) -> Problem:
    return Problem(503, SERVICE_UNAVAILABLE, "ただいまサービスを利用できません。しばらくしてから再度お試しください。",
                   headers={"Retry-After": "5"}, extra={"service": service} if service else None)


def service_timeout(service: str) -> Problem:
    """A service that did not answer in time: the change it was asked for may or may not have been made."""
    return Problem(504, "service.timeout", "処理がタイムアウトしました。しばらくしてから再度お試しください。",
                   extra={"service": service})


def exception_handlers() -> dict[type[Exception] | int, Any]:
    """Litestar's ``exception_handlers``: every failure leaves as problem+json."""
    from litestar.exceptions import HTTPException, ValidationException

    return {
        Problem: _handle_problem,
        ValidationException: _handle_validation,
        HTTPException: _handle_http,
        Exception: _handle_unexpected,
    }


def __getattr__(name: str) -> Any:
    # ``EXCEPTION_HANDLERS`` was a constant built at import; kept as a name for code that still imports it.
    if name == "EXCEPTION_HANDLERS":
        return exception_handlers()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
