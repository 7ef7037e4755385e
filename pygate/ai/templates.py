"""Prompt templates as REST APIs: POST /ai/sentiment {"text": "..."} -> the completion.

A template has versions; old versions stay in the config, and which one answers is
`active` (default: the highest) or a percentage `split` between versions, so a
rollback is a config change and a new version can take 10% of traffic first.
Variables are typed; missing or unexpected ones get a 400 that names them.
"""

from __future__ import annotations

import random
import re
from typing import Any

from aiohttp import web

from pygate.ai.chat import Renderer, run_chat
from pygate.ai.config import AiSettings, Template, TemplateVersion
from pygate.ai.errors import AiError, openai_error
from pygate.ai.service import read_json

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
}


def choose_version(template: Template) -> TemplateVersion:
    versions = {v.version: v for v in template.versions}
    if template.split:
        numbers = list(template.split)
        picked = random.choices(numbers, [template.split[n] for n in numbers])[0]
        return versions[picked]
    if template.active is not None:
        return versions[template.active]
    return versions[max(versions)]


def check_variables(version: TemplateVersion, values: dict[str, Any]) -> None:
    declared = version.variables
    missing = sorted(set(declared) - set(values))
    extra = sorted(set(values) - set(declared))
    problems = []
    if missing:
        problems.append(f"missing variables: {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected variables: {', '.join(extra)}")
    for name, kind in declared.items():
        if name not in values:
            continue
        value = values[name]
        wrong_bool = isinstance(value, bool) and kind != "boolean"
        if wrong_bool or not isinstance(value, _TYPES[kind]):
            problems.append(f"variable {name} must be a {kind}")
    if problems:
        raise AiError(400, "bad_template_variables", "; ".join(problems))


def render(text: str, values: dict[str, Any]) -> str:
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), text)


class TemplateRenderer(Renderer):
    def __init__(self, template: Template, version: TemplateVersion) -> None:
        super().__init__({})
        self.template = template
        self.version = version

    def completion(self, completion: dict[str, Any]) -> dict[str, Any]:
        message = completion["choices"][0]["message"]
        return {
            "template": self.template.name,
            "version": self.version.version,
            "model": completion.get("model"),
            "output": message.get("content") or "",
            "usage": completion.get("usage"),
        }


def build_body(template: Template, version: TemplateVersion, values: dict[str, Any]) -> dict:
    messages = []
    if version.system:
        messages.append({"role": "system", "content": render(version.system, values)})
    messages.append({"role": "user", "content": render(version.prompt, values)})
    body: dict[str, Any] = {"model": version.model or template.model, "messages": messages}
    if version.max_tokens:
        body["max_tokens"] = version.max_tokens
    return body


async def handle_template(request: web.Request) -> web.StreamResponse:
    """Any POST that is not a fixed AI path: a prompt template, looked up by its path
    in the current settings (so a reload can add, change or roll back templates)."""
    from pygate.ai.app import SERVICE

    service = request.app[SERVICE]
    request_id = request.headers.get("X-Request-Id", "")
    template = service.templates.get(request.path)
    if template is None:
        return openai_error(AiError(404, "no_route", f"no template at {request.path}"), request_id)
    version = choose_version(template)
    label = f"template:{template.name}@{version.version}"
    ctx = service.begin(request, label, version.model or template.model, False)
    try:
        values = await read_json(request)
        check_variables(version, values)
    except AiError as error:
        service.finish(ctx, {}, None, 0, error)
        return openai_error(error, request_id)
    body = build_body(template, version, values)
    return await run_chat(service, request, ctx, body, TemplateRenderer(template, version))


def template_problems(settings: AiSettings) -> list[tuple[tuple, str]]:
    """Config checks: versions exist, split adds up to 100, placeholders are declared."""
    problems: list[tuple[tuple, str]] = []
    for t_index, template in enumerate(settings.templates):
        path = ("ai", "templates", t_index)
        numbers = [v.version for v in template.versions]
        if len(set(numbers)) != len(numbers):
            problems.append(((*path, "versions"), "version numbers must be unique"))
        if template.active is not None and template.active not in numbers:
            problems.append(((*path, "active"), f"no version {template.active}"))
        if template.split:
            unknown = [n for n in template.split if n not in numbers]
            if unknown:
                problems.append(((*path, "split"), f"no version {unknown[0]}"))
            if sum(template.split.values()) != 100:
                problems.append(((*path, "split"), "percentages must add up to 100"))
        for v_index, version in enumerate(template.versions):
            text = version.prompt + (version.system or "")
            for name in _PLACEHOLDER.findall(text):
                if name not in version.variables:
                    problems.append(
                        ((*path, "versions", v_index, "prompt"), f"{{{{{name}}}}} is not declared")
                    )
    return problems
