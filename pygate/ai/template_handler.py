"""The HTTP side of prompt templates: any POST that is not a fixed AI path."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pygate.ai.chat import Renderer, respond
from pygate.ai.errors import AiError
from pygate.ai.service import read_json
from pygate.ai.templates import build_body, check_variables, choose_version
from pygate.config.ai_schema import Template, TemplateVersion


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


async def handle_template(request: web.Request) -> web.StreamResponse:
    """Any POST that is not a fixed AI path: a prompt template, looked up by its path
    in the current settings (so a reload can add, change or roll back templates)."""
    from pygate.ai.app import SERVICE

    service = request.app[SERVICE]
    template = service.templates.get(request.path)
    if template is None:
        raise AiError(404, "no_route", f"no template at {request.path}")
    version = choose_version(template)
    label = f"template:{template.name}@{version.version}"
    call = service.begin(request, label, version.model or template.model, False)
    with call.recorded():
        values = await read_json(request)
        check_variables(version, values)
    body = build_body(template, version, values)
    return await respond(request, call, body, TemplateRenderer(template, version))
