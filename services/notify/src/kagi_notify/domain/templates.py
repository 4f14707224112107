"""The template catalogue: Japanese texts following the seeds, one per template, and the rules they obey.

A template declares its category, the variables it needs, which of them are secret (scrubbed from the
delivery record once sent), sample values, the subject and optionally the sender (mail only; a key naming
an ``smtp.<key>_sender`` setting, so brand addresses stay settings). ``Catalogue.build`` refuses a
catalogue where a template uses a variable it does not declare, declares one it never uses, or names a
sender no setting defines — so a missing variable is found at start-up, never at send time. Reading the
files (``templates/<channel>/<name>.txt`` with a YAML front matter) is ``adapters.template_files``'s job.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import jinja2
import jinja2.meta

from kagi_shared.events.notify import Category, Channel

GLOBALS = frozenset({"brand", "portal_url"})
CATEGORIES: frozenset[str] = frozenset(typing.get_args(Category))
CHANNELS: frozenset[str] = frozenset(typing.get_args(Channel))


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class TemplateSpec:
    name: str
    channel: str
    category: str
    variables: frozenset[str]
    secret: frozenset[str]
    sample: dict[str, str]
    subject: str
    body: str
    description: str = ""
    sender: str = ""
    """Key of the From address among the configured senders; empty: the default sender."""
    origin: str = ""
    """Where the template was read from, for error messages."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    sender: str | None = None
    """The template's own From address; ``None``: the channel's default."""


class Catalogue:
    def __init__(self, env: jinja2.Environment, specs: dict[str, TemplateSpec], globals_: dict[str, str],
                 senders: Mapping[str, str] | None = None) -> None:
        self.env = env
        self.specs = specs
        self.globals = globals_
        self.senders = dict(senders or {})
        self._compiled: dict[str, tuple[jinja2.Template, jinja2.Template]] = {}

    @classmethod
    def build(cls, specs: Iterable[TemplateSpec], brand: str, portal_url: str,
              senders: Mapping[str, str]) -> Catalogue:
        """``senders``: sender key → From address."""
        env = jinja2.Environment(
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # noqa: S701 - plain-text mail and SMS; no HTML is produced
            keep_trailing_newline=True,
        )
        checked: dict[str, TemplateSpec] = {}
        for spec in specs:
            if spec.name in checked:
                raise TemplateError(f"template name {spec.name} is used twice")
            used: set[str] = set()
            for part in (spec.subject, spec.body):
                try:
                    used |= jinja2.meta.find_undeclared_variables(env.parse(part))
                except jinja2.TemplateSyntaxError as exc:
                    raise TemplateError(f"{spec.origin or spec.name}: {exc}") from None
            undeclared = used - spec.variables - GLOBALS
            if undeclared:
                raise TemplateError(f"template {spec.name} uses undeclared variables: {sorted(undeclared)}")
            unused = spec.variables - used
            if unused:
                raise TemplateError(f"template {spec.name} declares variables it never uses: {sorted(unused)}")
            if spec.sender and spec.sender not in senders:
                raise TemplateError(f"template {spec.name} names an unknown sender {spec.sender!r} "
                                    f"(configured: {sorted(senders)})")
            checked[spec.name] = spec
        return cls(env, checked, {"brand": brand, "portal_url": portal_url}, senders)

    def spec(self, name: str) -> TemplateSpec:
        try:
            return self.specs[name]
        except KeyError:
            raise TemplateError(f"unknown template {name!r}") from None

    def render(self, name: str, variables: dict[str, str]) -> Rendered:
        spec = self.spec(name)
        missing = spec.variables - variables.keys()
        if missing:
            raise TemplateError(f"template {name} is missing variables: {sorted(missing)}")
        values = {**variables, **self.globals}
        if name not in self._compiled:  # compiling costs far more than rendering: once per template
            self._compiled[name] = (self.env.from_string(spec.subject), self.env.from_string(spec.body))
        subject_template, body_template = self._compiled[name]
        subject = subject_template.render(values).strip()
        body = body_template.render(values)
        return Rendered(subject=subject, body=body, sender=self.senders[spec.sender] if spec.sender else None)

    def render_sample(self, name: str) -> Rendered:
        return self.render(name, self.spec(name).sample)
