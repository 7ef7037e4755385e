"""Config problems and how they are reported.

Every problem is reported as one line, `config error: FILE:LINE: PATH: MESSAGE`, so
an operator can jump straight to the offending line; the line is omitted when the
problem has no place in the file (for example a missing top-level field).
"""

from __future__ import annotations

from dataclasses import dataclass

from pygate.config.paths import FieldPath, format_path


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    file: str
    line: int | None
    path: FieldPath
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.path:
            return f"{where}: {format_path(self.path)}: {self.message}"
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """One or more problems that make a config unusable."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        if not problems:
            raise ValueError("ConfigError needs at least one problem")
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

    def lines(self) -> list[str]:
        """The report as printed by the CLI, one line per problem."""
        return [f"config error: {p}" for p in self.problems]
