"""Admin API errors, all answered as JSON.

    400 {"error": "invalid", "problems": [{"path": "routes[2].paths[0]", "message": "..."}]}
    404 {"error": "not_found", "message": "..."}
    409 {"error": "conflict", "message": "...", "problems": [...]}
    503 {"error": "unavailable", "message": "..."}

Paths name the field in the whole entity document (the YAML file's layout), the way
`pygate check` names them, so an error reads the same wherever the change came from.
"""

from __future__ import annotations

from typing import Any

from pygate.config import ConfigError
from pygate.config.paths import FieldPath, format_path


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("message") or body.get("error"))
        self.status = status
        self.body = body


def problem(path: FieldPath, message: str) -> dict[str, str]:
    return {"path": format_path(path), "message": message}


def invalid(problems: list[dict[str, str]]) -> ApiError:
    return ApiError(400, {"error": "invalid", "problems": problems})


def invalid_at(path: FieldPath, message: str) -> ApiError:
    return invalid([problem(path, message)])


def not_found(message: str) -> ApiError:
    return ApiError(404, {"error": "not_found", "message": message})


def conflict(message: str, problems: list[dict[str, str]] | None = None) -> ApiError:
    body: dict[str, Any] = {"error": "conflict", "message": message}
    if problems:
        body["problems"] = problems
    return ApiError(409, body)


def unavailable(message: str) -> ApiError:
    return ApiError(503, {"error": "unavailable", "message": message})


def problems_of(exc: ConfigError) -> list[dict[str, str]]:
    return [problem(p.path, p.message) for p in exc.problems]
