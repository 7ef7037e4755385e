"""`pygate admin export|import`: the entities of a running gateway as declarative YAML.

Both talk to the gateway's admin listener (admin.listen in the config file, with its
admin token: pygate/cli/admin_client.py): the gateway owns its admin state. A gateway
that serves another config refuses (exit code 2), so an import never replaces the
entities of the wrong gateway. Secrets are exported as fingerprints ("sha256:..."); an
import that gives a fingerprint keeps the secret the gateway has with it.

    pygate admin export --config gateway.yaml [-o entities.yaml]
    pygate admin import --config gateway.yaml entities.yaml
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from pygate.cli.admin_client import AdminError, AdminTarget, AdminUnreachable
from pygate.cli.commands import admin_target, client_failure, load_for_client

_TIMEOUT_S = 60.0


def add_admin_parser(commands: Any) -> None:
    admin = commands.add_parser("admin", help="the admin API's entities (export, import)")
    sub = admin.add_subparsers(dest="admin_command", metavar="COMMAND", required=True)
    export = sub.add_parser("export", help="write the running gateway's entities as YAML")
    export.add_argument("--config", "-c", required=True, metavar="FILE", help="gateway YAML file")
    export.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    imp = sub.add_parser("import", help="replace the running gateway's entities with a YAML file")
    imp.add_argument("--config", "-c", required=True, metavar="FILE", help="gateway YAML file")
    imp.add_argument("input", metavar="IN.yaml", help="upstreams, consumers and routes")


def run_admin_command(args: argparse.Namespace) -> int:
    loaded = load_for_client(args.config)
    target = admin_target(loaded) if loaded is not None else None
    if target is None:
        return 2
    if args.admin_command == "export":
        return _export(target, args.output)
    return _import(target, args.input)


def _export(target: AdminTarget, output: str | None) -> int:
    try:
        body = target.request("/config?format=json", timeout_s=_TIMEOUT_S)
    except (AdminError, AdminUnreachable) as exc:
        return _failed(exc, "export")
    text = yaml.safe_dump(body, sort_keys=False, allow_unicode=True)
    if output is None:
        sys.stdout.write(text)
        return 0
    with open(output, "w", encoding="utf-8") as handle:
        handle.write(text)
    counts = ", ".join(f"{len(body.get(k, []))} {k}" for k in ("upstreams", "consumers", "routes"))
    print(f"exported {counts} to {output}")
    return 0


def _import(target: AdminTarget, path: str) -> int:
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        print(f"pygate: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    try:
        body = target.request(
            "/config", payload={} if document is None else document, timeout_s=_TIMEOUT_S
        )
    except AdminUnreachable as exc:
        return _failed(exc, "import")
    except AdminError as exc:
        problems = exc.body.get("problems") if isinstance(exc.body, dict) else None
        if exc.status == 400 and problems:
            for problem in problems:
                where = f"{problem['path']}: " if problem.get("path") else ""
                print(f"import error: {path}: {where}{problem['message']}", file=sys.stderr)
            return 2
        return _failed(exc, "import")
    counts = ", ".join(f"{len(body.get(k, []))} {k}" for k in ("upstreams", "consumers", "routes"))
    print(f"imported {path}: the gateway now serves {counts}")
    return 0


def _failed(exc: Exception, what: str) -> int:
    if isinstance(exc, AdminUnreachable):
        print(f"pygate: {what} failed: no gateway answers ({exc})", file=sys.stderr)
        return 1
    return client_failure(exc, what)
