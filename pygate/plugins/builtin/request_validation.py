"""request-validation: refuse requests whose JSON body, query args or headers do not
match a JSON schema, before they reach the upstream.

    request-validation:
      body_schema:            # the JSON body
        type: object
        required: [name]
        properties: {name: {type: string}, age: {type: integer, minimum: 0}}
      query_schema:           # query args as an object of strings
        required: [page]      # (a repeated arg is a list of strings)
      header_schema:          # headers as an object, names lower-cased
        required: [x-tenant]

A refusal is 400 `request_invalid` with the first problem as "<where>: <reason>", where
is a JSON path into the body (`$.age`), or `query.page` / `headers.x-tenant`. Schemas
follow their `$schema` draft (default 2020-12) and are checked when the config loads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import jsonschema
import msgspec
from jsonschema.exceptions import ValidationError, best_match

from pygate.plugins.python import Plugin, Refuse, Request, Response
from pygate.plugins.registry import register_python

_SCHEMA_FIELDS = ("body_schema", "query_schema", "header_schema")


class RequestValidationConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    body_schema: dict[str, Any] | None = None
    query_schema: dict[str, Any] | None = None
    header_schema: dict[str, Any] | None = None


def compile_schema(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def schema_problems(config: RequestValidationConfig, _context: Any) -> Iterator[tuple]:
    """Config check: each schema must be valid against its draft's meta-schema."""
    if all(getattr(config, name) is None for name in _SCHEMA_FIELDS):
        yield (), "expected at least one of " + ", ".join(_SCHEMA_FIELDS)
    for name in _SCHEMA_FIELDS:
        schema = getattr(config, name)
        if schema is None:
            continue
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        # As cls.check_schema does, but reporting the most relevant error with its path.
        meta = jsonschema.validators.validator_for(cls.META_SCHEMA, default=cls)
        checker = meta(cls.META_SCHEMA, format_checker=meta.FORMAT_CHECKER)
        error = best_match(checker.iter_errors(schema))
        if error is not None:
            # error.path leads into the schema itself, e.g. properties.age.type
            yield (name, *error.path), f"invalid JSON schema: {error.message}"


def _where(root: str, error: ValidationError) -> str:
    path = root
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def query_object(query: str) -> dict[str, str | list[str]]:
    doc: dict[str, Any] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in doc:
            doc[name] = value
        elif isinstance(doc[name], list):
            doc[name].append(value)
        else:
            doc[name] = [doc[name], value]
    return doc


def header_object(pairs: list[tuple[str, str]]) -> dict[str, str]:
    doc: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        doc[key] = f"{doc[key]}, {value}" if key in doc else value
    return doc


class RequestValidator:
    """The compiled schemas of one route; `problem` says what is wrong, or None."""

    def __init__(self, config: RequestValidationConfig) -> None:
        self.body = compile_schema(config.body_schema) if config.body_schema else None
        self.query = compile_schema(config.query_schema) if config.query_schema else None
        self.headers = compile_schema(config.header_schema) if config.header_schema else None

    def problem(self, query: str, headers: list[tuple[str, str]], body: bytes) -> str | None:
        if self.headers is not None:
            error = best_match(self.headers.iter_errors(header_object(headers)))
            if error is not None:
                return f"{_where('headers', error)}: {error.message}"
        if self.query is not None:
            error = best_match(self.query.iter_errors(query_object(query)))
            if error is not None:
                return f"{_where('query', error)}: {error.message}"
        if self.body is not None:
            if not body.strip():
                return "$: a JSON body is required"
            try:
                doc = json.loads(body)
            except ValueError as exc:
                return f"$: the body is not valid JSON ({exc})"
            error = best_match(self.body.iter_errors(doc))
            if error is not None:
                return f"{_where('$', error)}: {error.message}"
        return None


class RequestValidation(Plugin):
    Config = RequestValidationConfig

    def __init__(self, config: RequestValidationConfig) -> None:
        super().__init__(config)
        self.validator = RequestValidator(config)

    async def access(self, request: Request) -> Response | None:
        problem = self.validator.problem(request.query, list(request.headers.items()), request.body)
        if problem is not None:
            raise Refuse(400, "request_invalid", problem)
        return None


PLUGIN = register_python("request-validation", RequestValidation, check=schema_problems)
