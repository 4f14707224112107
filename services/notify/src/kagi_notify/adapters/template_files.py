"""Notify's templates on disk: ``templates/<channel>/<name>.txt``, a YAML front matter block then the body.

Adding a notice is adding a file. Each file's front matter is checked here (category, subject, sender,
samples); the rules across the catalogue (variables used and declared, known senders) are the domain's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import msgspec
import yaml

from kagi_notify.domain.templates import CATEGORIES, CHANNELS, Catalogue, TemplateError, TemplateSpec
from kagi_shared.settings import SmtpSettings

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"


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
                        description=comment, sender=sender, origin=str(path))


def read_templates(directory: Path = TEMPLATE_DIR) -> Iterator[TemplateSpec]:
    for channel in sorted(CHANNELS):
        for path in sorted((directory / channel).glob("*.txt")):
            yield parse_template(path, channel)


def read_catalogue(brand: str, portal_url: str, directory: Path = TEMPLATE_DIR,
                   senders: Mapping[str, str] | None = None) -> Catalogue:
    """The catalogue in ``directory``; ``senders``: sender key → From address (default: the default settings')."""
    senders = dict(senders) if senders is not None else sender_addresses(SmtpSettings())
    return Catalogue.build(read_templates(directory), brand, portal_url, senders)
