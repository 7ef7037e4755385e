"""`pygate admin export|import`: the entities of a running gateway as declarative YAML.

Both talk to the gateway's admin listener (admin.listen in the config file, with
admin.token, or the first of admin.tokens): the gateway owns its admin state.

    pygate admin export --config gateway.yaml [-o entities.yaml]
    pygate admin import --config gateway.yaml entities.yaml
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any

import yaml

from pygate.admin_client import admin_url
from pygate.config import ConfigError, LoadedConfig, load_config

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
    try:
        loaded = load_config(args.config)
    except ConfigError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return 2
    if args.admin_command == "export":
        return _export(loaded, args.output)
    return _import(loaded, args.input)


def _export(loaded: LoadedConfig, output: str | None) -> int:
    status, body = _call(loaded, "GET", "/config?format=json")
    if status != 200:
        return _failed(status, body, "export")
    text = yaml.safe_dump(body, sort_keys=False, allow_unicode=True)
    if output is None:
        sys.stdout.write(text)
        return 0
    with open(output, "w", encoding="utf-8") as handle:
        handle.write(text)
    counts = ", ".join(f"{len(body.get(k, []))} {k}" for k in ("upstreams", "consumers", "routes"))
    print(f"exported {counts} to {output}")
    return 0


def _import(loaded: LoadedConfig, path: str) -> int:
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        print(f"pygate: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    status, body = _call(loaded, "POST", "/config", {} if document is None else document)
    if status == 400 and isinstance(body, dict) and body.get("problems"):
        for problem in body["problems"]:
            where = f"{problem['path']}: " if problem.get("path") else ""
            print(f"import error: {path}: {where}{problem['message']}", file=sys.stderr)
        return 2
    if status != 200:
        return _failed(status, body, "import")
    counts = ", ".join(f"{len(body.get(k, []))} {k}" for k in ("upstreams", "consumers", "routes"))
    print(f"imported {path}: the gateway now serves {counts}")
    return 0


def _failed(status: int, body: Any, what: str) -> int:
    message = body.get("message") or body.get("error") if isinstance(body, dict) else body
    print(f"pygate: {what} failed: HTTP {status}: {message}", file=sys.stderr)
    return 1


def _call(loaded: LoadedConfig, method: str, path: str, payload: Any = None) -> tuple[int, Any]:
    admin = loaded.config.admin
    token = admin.token or next((t.token for t in admin.tokens), None)
    headers = {"Accept": "application/json"}
    data = None
    if payload is not None:
        data = json.dumps(payload, default=str).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    url = admin_url(admin.listen, path)
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw.decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return 0, f"no gateway answers on admin {admin.listen} ({reason})"
