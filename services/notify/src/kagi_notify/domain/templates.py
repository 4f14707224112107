"""The template catalogue: Japanese texts following the seeds, one file per template.

``templates/<channel>/<name>.txt`` starts with a YAML front matter block declaring the
template's category, the variables it needs, which of them are secret (scrubbed from
the delivery record once sent), sample values, the subject and optionally the sender
(mail only; a key naming an ``smtp.<key>_sender`` setting, so brand addresses stay
settings); the body follows. Adding a notice is adding a file. ``Catalogue.load`` refuses to start if a
template uses a variable it does not declare, declares one it never uses, or lacks a
sample for one, or names a sender no setting defines — so a missing variable is found
at start-up, never at send time.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jinja2
import jinja2.meta
import msgspec
import yaml

from kagi_shared.events.notify import Category, Channel
from kagi_shared.settings import SmtpSettings

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
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


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    sender: str | None = None
    """The template's own From address; ``None``: the channel's default."""


def sender_addresses(smtp: SmtpSettings) -> dict[str, str]:
    """Sender key → address: ``default`` and every ``<key>_sender`` setting."""
    fields = msgspec.structs.asdict(smtp)
    return {"default": smtp.sender, **{name.removesuffix("_sender"): str(value) for name, value in fields.items()
                                       if name.endswith("_sender") and value}}


def parse_template(path: Path, channel: str) -> TemplateSpec:
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        raise TemplateError(f"{path}: must start with a '---' front matter block")
    header, sep, body = text[4:].partition("\n---\n")
    if not sep:
        raise TemplateError(f"{path}: front matter is not closed with '---'")
    try:
        meta = yaml.safe_load(header) or {}
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path}: front matter is not valid YAML: {exc}") from None
    comment = next((line[1:].strip() for line in header.splitlines() if line.startswith("#")), "")
    category = meta.get("category")
    if category not in CATEGORIES:
        raise TemplateError(f"{path}: category must be one of {sorted(CATEGORIES)}, got {category!r}")
    if channel == "mail" and not meta.get("subject"):
        raise TemplateError(f"{path}: a mail template needs a subject")
    sender = str(meta.get("sender") or "")
    if sender and channel != "mail":
        raise TemplateError(f"{path}: only mail templates have a sender")
    variables = frozenset(meta.get("variables") or ())
    secret = frozenset(meta.get("secret") or ())
    sample = {str(k): str(v) for k, v in (meta.get("sample") or {}).items()}
    if not secret <= variables:
        raise TemplateError(f"{path}: secret variables {sorted(secret - variables)} are not declared")
    if set(sample) != set(variables):
        raise TemplateError(f"{path}: sample must give exactly the declared variables "
                            f"(missing {sorted(variables - set(sample))}, extra {sorted(set(sample) - variables)})")
    return TemplateSpec(name=path.stem, channel=channel, category=category, variables=variables, secret=secret,
                        sample=sample, subject=str(meta.get("subject") or ""), body=body.lstrip("\n"),
                        description=comment, sender=sender)


class Catalogue:
    def __init__(self, env: jinja2.Environment, specs: dict[str, TemplateSpec], globals_: dict[str, str],
                 senders: Mapping[str, str] | None = None) -> None:
        self.env = env
        self.specs = specs
        self.globals = globals_
        self.senders = dict(senders or {})
        self._compiled: dict[str, tuple[jinja2.Template, jinja2.Template]] = {}

    @classmethod
    def load(cls, brand: str, portal_url: str, directory: Path = TEMPLATE_DIR,
             senders: Mapping[str, str] | None = None) -> Catalogue:
        """``senders``: sender key → From address (default: those of the default settings)."""
        senders = dict(senders) if senders is not None else sender_addresses(SmtpSettings())
        env = jinja2.Environment(
            undefined=jinja2.StrictUndefined,
            autoescape=False,  # noqa: S701 - plain-text mail and SMS; no HTML is produced
            keep_trailing_newline=True,
        )
        specs: dict[str, TemplateSpec] = {}
        for channel in sorted(CHANNELS):
            for path in sorted((directory / channel).glob("*.txt")):
                spec = parse_template(path, channel)
                if spec.name in specs:
                    raise TemplateError(f"template name {spec.name} is used twice")
                used: set[str] = set()
                for part in (spec.subject, spec.body):
                    try:
                        used |= jinja2.meta.find_undeclared_variables(env.parse(part))
                    except jinja2.TemplateSyntaxError as exc:
                        raise TemplateError(f"{path}: {exc}") from None
                undeclared = used - spec.variables - GLOBALS
                if undeclared:
                    raise TemplateError(f"template {spec.name} uses undeclared variables: {sorted(undeclared)}")
                unused = spec.variables - used
                if unused:
                    raise TemplateError(f"template {spec.name} declares variables it never uses: {sorted(unused)}")
                if spec.sender and spec.sender not in senders:
                    raise TemplateError(f"template {spec.name} names an unknown sender {spec.sender!r} "
                                        f"(configured: {sorted(senders)})")
                specs[spec.name] = spec
        return cls(env, specs, {"brand": brand, "portal_url": portal_url}, senders)

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
