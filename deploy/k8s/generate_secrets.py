"""Write the Secrets an overlay's secretGenerator reads (``make k8s-secrets``): one random value per purpose.

``python3 deploy/k8s/generate_secrets.py deploy/k8s/overlays/prod`` creates ``<overlay>/secrets/*.env`` (git-ignored,
mode 0600) with 32 random bytes per secret, URL-safe base64: the token signing key (gateway only), one
internal-API credential per service (the gateway holds all five, each API its own), a code pepper per service
that stores codes, the audit chain's key, the key that seals mail requests (the services that ask for mail and
notify share it), and one MongoDB password per service user. Existing files are kept, so
running it again never rotates a secret by accident; ``--rotate`` writes new ones. Standard library only: it
runs before anything is installed.
"""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path

SERVICES = ("lifecycle", "invite", "permissions", "notify", "audit")
PEPPERED = ("lifecycle", "invite", "notify")
MAILING = ("lifecycle", "invite", "permissions", "notify")


def _value() -> str:
    return secrets.token_urlsafe(32)


def plan() -> dict[str, dict[str, str]]:
    """File name -> variables, with fresh values; a service's credential is shared by it and the gateway."""
    tokens = {svc: _value() for svc in SERVICES}
    notify_key = _value()
    files: dict[str, dict[str, str]] = {
        "gateway.env": {"KAGI_SECURITY_JWT_SECRET": _value(),
                        **{f"KAGI_SECURITY_INTERNAL_TOKEN_{svc.upper()}": tokens[svc] for svc in SERVICES}},
    }
    for svc in SERVICES:
        own = {"KAGI_SECURITY_INTERNAL_TOKEN": tokens[svc]}
        if svc in PEPPERED:
            own["KAGI_SECURITY_CODE_PEPPER"] = _value()
        if svc in MAILING:
            own["KAGI_SECURITY_NOTIFY_KEY"] = notify_key
        if svc == "audit":
            own["KAGI_SECURITY_AUDIT_KEY"] = _value()
        files[f"{svc}.env"] = own
        files[f"mongodb-{svc}.env"] = {"password": _value()}
    return files


def write(overlay: Path, *, rotate: bool = False) -> list[Path]:
    directory = overlay / "secrets"
    directory.mkdir(mode=0o700, exist_ok=True)
    if not rotate and all((directory / name).exists() for name in plan()):
        return []
    written = []
    for name, values in plan().items():
        path = directory / name
        if path.exists() and not rotate:
            raise SystemExit(f"{path} exists but the set is incomplete: remove {directory} or use --rotate")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(f"{key}={value}\n" for key, value in values.items())
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overlays", nargs="+", type=Path)
    parser.add_argument("--rotate", action="store_true", help="replace existing secrets")
    args = parser.parse_args()
    for overlay in args.overlays:
        written = write(overlay, rotate=args.rotate)
        print(f"{overlay}: {'wrote ' + str(len(written)) + ' files' if written else 'secrets exist, kept'}")


if __name__ == "__main__":
    main()
