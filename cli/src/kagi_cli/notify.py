"""``kagi notify``: the template catalogue (list every notice, render one with its sample data) and sent SMS."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kagi_cli.commands import command_group
from kagi_shared.settings import Settings


def _catalogue(settings: Settings) -> Any:
    from kagi_notify.bootstrap import load_catalogue

    return load_catalogue(settings)


def cmd_templates(args: argparse.Namespace, settings: Settings) -> int:
    catalogue = _catalogue(settings)
    rows = [(name, spec.channel, spec.category, catalogue.render_sample(name).subject or "-")
            for name, spec in sorted(catalogue.specs.items())]
    width = max((len(r[0]) for r in rows), default=4)
    print(f"{'NAME':<{width}}  {'CHANNEL':<7}  {'CATEGORY':<10}  SUBJECT")
    for name, channel, category, subject in rows:
        print(f"{name:<{width}}  {channel:<7}  {category:<10}  {subject}")
    return 0


def cmd_render(args: argparse.Namespace, settings: Settings) -> int:
    catalogue = _catalogue(settings)
    if args.name not in catalogue.specs:
        print(f"kagi: unknown template {args.name!r} (see 'kagi notify templates')", file=sys.stderr)
        return 1
    if not args.sample:
        print("kagi: only sample data can be rendered here: add --sample", file=sys.stderr)
        return 1
    spec = catalogue.spec(args.name)
    rendered = catalogue.render_sample(args.name)
    print(f"Template: {spec.name} ({spec.channel}, {spec.category})")
    if spec.channel == "mail":
        print(f"From: {rendered.sender or settings.smtp.sender}")
        print(f"Subject: {rendered.subject}")
    print()
    print(rendered.body, end="" if rendered.body.endswith("\n") else "\n")
    return 0


def cmd_sms(args: argparse.Namespace, settings: Settings) -> int:
    from kagi_notify.adapters.sms import read_sms
    from kagi_notify.bootstrap import sms_directory

    directory = sms_directory(settings)
    messages = [m for m in read_sms(directory) if not args.to or args.to in m.to]
    for index, sms in enumerate(messages[-args.last:] if args.last else messages, start=1):
        print(f"{index:>4}  {sms.created_at:%Y-%m-%d %H:%M:%S}  {sms.to:<16}  {' / '.join(sms.body.splitlines())}")
    if not messages:
        print(f"no SMS in {directory}")
    return 0


def register(sub: Any) -> None:
    notify_sub = command_group(sub, "notify", "notification templates", "The notify service's template catalogue")
    notify_sub.add_parser("templates", help="list every template (name, channel, category, subject)",
                          description="List every template: name, channel, category and subject") \
        .set_defaults(func=cmd_templates)
    render = notify_sub.add_parser("render", help="show one template rendered",
                                   description="Show one template rendered with its sample data (--sample)")
    render.add_argument("name", help="template name from 'kagi notify templates'")
    render.add_argument("--sample", action="store_true", help="render with the template's sample data")
    render.set_defaults(func=cmd_render)
    sms = notify_sub.add_parser("sms", help="SMS written by the embedded SMS sender (var/sms/)",
                                description="List the SMS the embedded SMS sender wrote under var/sms/")
    sms.add_argument("--to", help="only SMS to this number (substring)")
    sms.add_argument("--last", type=int, default=0, help="only the last N")
    sms.set_defaults(func=cmd_sms)
