"""Source locations and compiler-style diagnostics.

Every user-facing problem becomes a :class:`Diagnostic` printed as
``path:line:col: error: message``; stages collect them and raise one
:class:`NNError` carrying all of them, so a user sees every error at once.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Loc:
    """A span in a source file (1-based line and column of its start)."""

    path: str
    line: int
    col: int
    end_line: int = 0
    end_col: int = 0

    def __str__(self) -> str:
        if self.line <= 0:  # a whole file that is not text (a model, a weights archive)
            return self.path
        return f"{self.path}:{self.line}:{self.col}"

    @classmethod
    def file(cls, path: str) -> Loc:
        """The location of a whole file."""
        return cls(path, 0, 0)


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    message: str
    loc: Loc | None = None
    context: str = ""

    def format(self) -> str:
        where = f"{self.loc}: " if self.loc is not None else "nndsl: "
        text = f"{where}{self.severity.value}: {self.message}"
        return f"{text}\n{self.context}" if self.context else text


class NNError(Exception):
    """One or more errors in the user's model; never a bug in nndsl."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("\n".join(d.format() for d in self.diagnostics))

    @classmethod
    def at(cls, loc: Loc | None, message: str) -> NNError:
        return cls([Diagnostic(Severity.ERROR, message, loc)])


@dataclass
class DiagnosticSink:
    """Collects diagnostics of one stage; :meth:`raise_if_errors` ends the stage."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(self, loc: Loc | None, message: str) -> None:
        self.items.append(Diagnostic(Severity.ERROR, message, loc))

    def warning(self, loc: Loc | None, message: str) -> None:
        self.items.append(Diagnostic(Severity.WARNING, message, loc))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.WARNING]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise NNError(self.items)
