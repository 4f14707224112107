"""``kagi clients``: the target systems that log their users in through Kagi (OpenID Connect relying parties).

``create`` registers a confidential client for one target system with its exact redirect URIs and prints the
client secret once; Kagi keeps only its HMAC, so a lost secret means registering again. ``rotate-key`` makes a new
ID-token signing key; the old one stays in the JWKS until every token it signed has expired.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from kagi_cli.commands import command_group
from kagi_shared.settings import Settings


async def create(settings: Settings, system: str, redirect_uris: list[str], name: str,
                 post_logout: list[str]) -> tuple[str, str]:
    from kagi_cli.lifecycle import quiet_logs
    from kagi_lifecycle.bootstrap import bootstrap

    quiet_logs()
    lifecycle = bootstrap(settings)
    try:
        await lifecycle.start()
        client, secret = await lifecycle.oidc.create_client(system, redirect_uris, name, post_logout)
    finally:
        await lifecycle.close()
    return client.id, secret


async def rotate(settings: Settings) -> str:
    from kagi_cli.lifecycle import quiet_logs
    from kagi_lifecycle.bootstrap import bootstrap

    quiet_logs()
    lifecycle = bootstrap(settings)
    try:
        await lifecycle.start()
        return (await lifecycle.oidc.rotate_key()).id
    finally:
        await lifecycle.close()


def _problem_exit(exc: Any) -> SystemExit:
    reasons = "; ".join(f"{e.field}: {e.reason}" for e in exc.errors)
    return SystemExit(f"kagi: {exc.code}: {exc.title}" + (f" ({reasons})" if reasons else ""))


def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    from kagi_shared.problems import Problem

    try:
        client_id, secret = asyncio.run(create(settings, args.system, args.redirect_uri,
                                               args.name or f"{args.system}", args.post_logout_redirect_uri or []))
    except Problem as exc:
        raise _problem_exit(exc) from None
    issuer = settings.brand.portal_url.rstrip("/")
    print(f"client_id      {client_id}\nclient_secret  {secret}   (shown once: Kagi keeps only its hash)\n"
          f"discovery      {issuer}/.well-known/openid-configuration")
    return 0


def cmd_rotate(args: argparse.Namespace, settings: Settings) -> int:
    print(f"new signing key {asyncio.run(rotate(settings))}; the previous key stays published until its tokens "
          f"expire ({settings.security.access_token_ttl_s} s)")
    return 0


def register(subparsers: Any) -> None:
    sub = command_group(subparsers, "clients", "target systems that log in through Kagi (OpenID Connect)",
                        "OpenID Connect clients of the target systems and the signing key")
    create_parser = sub.add_parser("create", help="register a confidential client; prints its secret once",
                                   description="Register a target system as an OpenID Connect client "
                                               "(Authorization Code + PKCE, client_secret_basic or _post)")
    create_parser.add_argument("--system", required=True, choices=("TAXIS", "JOHS", "JUJU", "LOACUS"))
    create_parser.add_argument("--redirect-uri", required=True, action="append",
                               help="exact redirect URI (https; repeat for several)")
    create_parser.add_argument("--post-logout-redirect-uri", action="append",
                               help="where RP-initiated logout may return (repeat for several)")
    create_parser.add_argument("--name", help="a name for people (default: the system)")
    create_parser.set_defaults(func=cmd_create)
    sub.add_parser("rotate-key", help="new ID token signing key (the old one stays until its tokens expire)",
                   description="Rotate the OpenID Provider's signing key").set_defaults(func=cmd_rotate)
