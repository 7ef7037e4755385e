"""The HTTP side of prompt templates: any POST that is not a fixed AI path."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pygate.ai.chat import Renderer, run_chat
from pygate.ai.errors import AiError, openai_error
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
