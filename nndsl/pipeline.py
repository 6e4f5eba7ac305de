"""The compiler pipeline in one place: text -> AST -> resolved -> typed IR -> lowered, planned IR."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from nndsl import ast, ir
from nndsl.check import check
from nndsl.diagnostics import Diagnostic, DiagnosticSink, NNError
from nndsl.lower import lower
from nndsl.parser import MAX_SOURCE_CHARS, parse, too_large
from nndsl.passes import fold_batch_norms, fuse_activations, plan_memory
from nndsl.ranges import Observed, RangeReport, analyse, report_diagnostics
from nndsl.resolve import absolute_path, open_regular_file, resolve
from nndsl.summary import Summary, check_budget, summarize


@dataclass(frozen=True)
class Compiled:
    graph: ir.Graph
    summary: Summary
    warnings: tuple[Diagnostic, ...]
    dependencies: tuple[Path, ...]  # files the result depends on (the .nn and its weights)
    ranges: RangeReport | None  # the fixed-point range analysis (integer networks)
    budget_errors: tuple[Diagnostic, ...] = ()  # the target's budget exceeded, when not raised (summarize)

    def range_warnings(self, observed: Observed | None = None) -> list[Diagnostic]:
        """Where an output format clips values the worst-case input reaches (``nndsl check``); ``observed``:
        the layers' outputs on calibration inputs, which each warning then says reach it or not."""
        sink = DiagnosticSink()
        if self.ranges is not None:
            report_diagnostics(self.ranges, sink, warnings=True, observed=observed)
        return sink.warnings


def compile_source(source: str, path: str = "<string>", *, archive: bytes | None = None, budget: bool = True
                   ) -> Compiled:
    """Compile `.nn` text; ``path`` labels locations and anchors the weights file. Raises NNError.

    With ``budget=False`` a model over its target's budget still compiles, its
    budget errors kept in ``budget_errors`` (``nndsl summarize`` shows what to shrink). ``archive``: the
    weights as ``.npz`` bytes, read instead of the file the text names.
    """
    return compile_program(parse(source, path), path, archive=archive, budget=budget)


def compile_program(program: ast.Program, path: str, *, archive: bytes | None = None, budget: bool = True
                    ) -> Compiled:
    """Compile a syntax tree (parsed, or made by :class:`nndsl.Network`); ``archive`` as in :func:`resolve`."""
    sink = DiagnosticSink()
    resolved = resolve(program, path, sink, archive)
    sink.raise_if_errors()
    assert resolved is not None
    graph = check(resolved, sink)
    sink.raise_if_errors()
    assert graph is not None
    graph = lower(fuse_activations(fold_batch_norms(graph, sink)), sink)
    sink.raise_if_errors()
    graph = replace(graph, plan=plan_memory(graph))
    ranges = analyse(graph)
    if ranges is not None:
        report_diagnostics(ranges, sink, warnings=False)
    summary = summarize(graph)
    over_budget = DiagnosticSink()
    check_budget(graph, summary, sink if budget else over_budget)
    sink.raise_if_errors()
    dependencies = [absolute_path(Path(path))] if not path.startswith("<") else []
    if resolved.weights_path is not None:
        dependencies.append(resolved.weights_path)
    return Compiled(graph, summary, tuple(sink.warnings), tuple(dependencies), ranges, tuple(over_budget.errors))


def compile_file(path: str | Path, *, budget: bool = True) -> Compiled:
    """Compile a `.nn` file (weights paths in it are relative to the file); ``budget`` as in :func:`compile_source`."""
    return compile_source(read_source(path), str(path), budget=budget)


def read_source(path: str | Path) -> str:
    """A `.nn` file's text; a missing, non-regular (FIFO, device), oversized or non-UTF-8 file is an ``NNError``.

    At most one byte beyond the parser's limit is read.
    """
    if "\0" in str(path):
        raise NNError.at(None, f"cannot read {str(path)!r}: a file name has no NUL character")
    try:
        with open_regular_file(Path(path)) as stream:
            data = stream.read(MAX_SOURCE_CHARS + 1)
        if len(data) > MAX_SOURCE_CHARS:
            raise too_large(str(path))
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise NNError.at(None, f"cannot read '{path}': {reason}") from None
