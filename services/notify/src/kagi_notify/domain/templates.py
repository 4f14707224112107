"""The template catalogue: Japanese mail texts following the seeds, one file per template.

A template file's first line is the subject, the rest (after one blank line) the body.
Every variable a template uses must be declared here; ``Catalogue.load`` refuses to start
otherwise, so a missing variable is found at start-up, never at send time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jinja2
import jinja2.meta
from kagi_shared.events.notify import Category

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
GLOBALS = frozenset({"brand", "portal_url"})


@dataclass(frozen=True)
class TemplateSpec:
    name: str
    category: Category
    variables: frozenset[str]
    secret: frozenset[str] = frozenset()
    """Variables scrubbed from the delivery record once the message is out."""
    sample: tuple[tuple[str, str], ...] = ()


SPECS: tuple[TemplateSpec, ...] = (
    TemplateSpec(
        name="step_up_code",
        category="security",
        variables=frozenset({"code", "expires_at"}),
        secret=frozenset({"code"}),
        sample=(("code", "ABCD2345EFGH"), ("expires_at", "2023年09月15日 14時59分まで")),
    ),
)


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


class Catalogue:
    def __init__(self, env: jinja2.Environment, specs: dict[str, TemplateSpec], globals_: dict[str, str]) -> None:
        self.env = env
        self.specs = specs
        self.globals = globals_

    @classmethod
    def load(cls, brand: str, portal_url: str, directory: Path = TEMPLATE_DIR) -> Catalogue:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
            keep_trailing_newline=True,
        )
        specs = {s.name: s for s in SPECS}
        for spec in SPECS:
            source = _source(directory, spec.name)
            used = jinja2.meta.find_undeclared_variables(env.parse(source))
            undeclared = used - spec.variables - GLOBALS
            if undeclared:
                raise TemplateError(f"template {spec.name} uses undeclared variables: {sorted(undeclared)}")
            unused = spec.variables - used
            if unused:
                raise TemplateError(f"template {spec.name} declares variables it never uses: {sorted(unused)}")
        return cls(env, specs, {"brand": brand, "portal_url": portal_url})

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
        text = self.env.get_template(f"mail/{name}.txt").render({**variables, **self.globals})
        subject, _, body = text.partition("\n\n")
        return Rendered(subject=subject.strip(), body=body)

    def render_sample(self, name: str) -> Rendered:
        return self.render(name, dict(self.spec(name).sample))


def _source(directory: Path, name: str) -> str:
    path = directory / "mail" / f"{name}.txt"
    if not path.exists():
        raise TemplateError(f"template file missing: {path}")
    return path.read_text(encoding="utf-8")
