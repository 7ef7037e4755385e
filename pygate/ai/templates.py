"""Prompt templates as REST APIs: POST /ai/sentiment {"text": "..."} -> the completion.

A template has versions; old versions stay in the config, and which one answers is
`active` (default: the highest) or a percentage `split` between versions, so a
rollback is a config change and a new version can take 10% of traffic first.
Variables are typed; missing or unexpected ones get a 400 that names them.

This module is the templates' logic (which version, the variables, the chat body); the
HTTP handler is `template_handler.py`; the config model and its checks are in
pygate/config (ai_schema.py, ai_checks.py).
"""

from __future__ import annotations

import random
from typing import Any

from pygate.ai.errors import AiError
from pygate.config.ai_schema import TEMPLATE_PLACEHOLDER, Template, TemplateVersion

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
    return TEMPLATE_PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), text)


def build_body(template: Template, version: TemplateVersion, values: dict[str, Any]) -> dict:
    messages = []
    if version.system:
        messages.append({"role": "system", "content": render(version.system, values)})
    messages.append({"role": "user", "content": render(version.prompt, values)})
    body: dict[str, Any] = {"model": version.model or template.model, "messages": messages}
    if version.max_tokens:
        body["max_tokens"] = version.max_tokens
    return body
