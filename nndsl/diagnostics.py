"""Source locations and compiler-style diagnostics.

Every user-facing problem becomes a :class:`Diagnostic` printed as
``path:line:col: error: message``; stages collect them and raise one
:class:`NNError` carrying all of them, so a user sees every error at once.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field, replace


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


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the candidate closest to a misspelt name, or ''."""
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


class WarningFlag(enum.Enum):
    """The kinds of warning, each named as ``-W`` options name it (``-Wno-saturation``)."""

    SATURATION = "saturation"  # a layer's output format clips values its inputs can reach
    UNUSED = "unused"  # a layer the output does not depend on
    ZERO_MULTIPLIER = "zero-multiplier"  # a requantisation multiplier below 2^-31 (outputs the zero point)


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    message: str
    loc: Loc | None = None
    context: str = ""
    flag: WarningFlag | None = None  # the kind of a warning (also of one -Werror made an error)

    def format(self) -> str:
        where = f"{self.loc}: " if self.loc is not None else "nndsl: "
        text = f"{where}{self.severity.value}: {self.message}{self.option}"
        return f"{text}\n{self.context}" if self.context else text

    @property
    def option(self) -> str:
        """`` [-Wsaturation]`` after a warning, `` [-Werror=saturation]`` after one made an error, as gcc does."""
        if self.flag is None:
            return ""
        return f" [-W{self.flag.value}]" if self.severity is Severity.WARNING else f" [-Werror={self.flag.value}]"


@dataclass(frozen=True)
class WarningPolicy:
    """What ``-W`` options ask of warnings, as gcc reads them: some kinds silenced, some or all made errors."""

    silenced: frozenset[WarningFlag] = frozenset()
    errors: frozenset[WarningFlag] = frozenset()  # -Werror=KIND
    kept: frozenset[WarningFlag] = frozenset()  # -Wno-error=KIND: a warning even under -Werror
    all_errors: bool = False  # -Werror

    @classmethod
    def parse(cls, options: Iterable[str]) -> WarningPolicy:
        """``error``, ``no-error``, ``error=KIND``, ``no-error=KIND``, ``KIND``, ``no-KIND`` (the text after
        ``-W``), later ones overriding earlier ones. Raises ``ValueError`` for an option it does not know."""
        policy = cls()
        for option in options:
            policy = policy.with_option(option)
        return policy

    def with_option(self, option: str) -> WarningPolicy:
        if option in ("error", "no-error"):
            return replace(self, all_errors=option == "error")
        if option.startswith("error="):
            flag = _flag(option.removeprefix("error="), option)
            return replace(self, errors=self.errors | {flag}, kept=self.kept - {flag}, silenced=self.silenced - {flag})
        if option.startswith("no-error="):
            flag = _flag(option.removeprefix("no-error="), option)
            return replace(self, errors=self.errors - {flag}, kept=self.kept | {flag})
        if option.startswith("no-"):
            return replace(self, silenced=self.silenced | {_flag(option.removeprefix("no-"), option)})
        return replace(self, silenced=self.silenced - {_flag(option, option)})

    def is_error(self, flag: WarningFlag) -> bool:
        return flag in self.errors or (self.all_errors and flag not in self.kept)

    def apply(self, diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
        """The diagnostics to show: silenced warnings left out, those asked for made errors."""
        shown = []
        for diagnostic in diagnostics:
            flag = diagnostic.flag
            if diagnostic.severity is not Severity.WARNING or flag is None:
                shown.append(diagnostic)
            elif flag not in self.silenced:
                shown.append(replace(diagnostic, severity=Severity.ERROR) if self.is_error(flag) else diagnostic)
        return shown


def _flag(name: str, option: str) -> WarningFlag:
    try:
        return WarningFlag(name)
    except ValueError:
        names = [f.value for f in WarningFlag]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean '-W{option.replace(name, close[0])}'?" if close else ""
        raise ValueError(f"unknown warning option '-W{option}'{hint} (warnings: {', '.join(names)}; "
                         f"-Werror makes every warning an error)") from None


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

    def warning(self, loc: Loc | None, message: str, flag: WarningFlag) -> None:
        self.items.append(Diagnostic(Severity.WARNING, message, loc, flag=flag))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity is Severity.WARNING]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise NNError(self.items)
