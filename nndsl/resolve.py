"""Bind names: tensors to the statements that define them, weights to `.npz` arrays.

Produces the layers in an order where every tensor is defined before it is
used (the file may define them in any order), and reports unknown and
duplicate names, wrong arity, cycles and unused inputs, all at once.
"""

from __future__ import annotations

import difflib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nndsl import ast
from nndsl.diagnostics import DiagnosticSink, Loc
from nndsl.ops import SIGNATURES, OpSignature
from nndsl.target import Target, resolve_target

Array = npt.NDArray[np.generic]


@dataclass(frozen=True)
class BoundLayer:
    """A layer statement with its arguments split into tensors and weights."""

    decl: ast.LayerDecl
    signature: OpSignature
    tensors: tuple[ast.Ref, ...]
    weights: dict[str, ast.Ref]


@dataclass(frozen=True)
class ResolvedProgram:
    program: ast.Program
    path: str
    input: ast.InputDecl
    layers: tuple[BoundLayer, ...]  # in execution order
    output: str
    output_loc: Loc
    weights: dict[str, Array]
    weights_path: Path | None
    target: Target | None


def _did_you_mean(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def load_weights(path: Path, loc: Loc, sink: DiagnosticSink, shown: str | None = None) -> dict[str, Array]:
    """Every array of an ``.npz`` file; never unpickles (``allow_pickle=False``).

    ``shown`` is the path as the user wrote it, for messages (default: ``path``).
    """
    name = shown or str(path)
    try:
        with open(path, "rb") as stream:
            magic = stream.read(6)
        if magic == b"\x93NUMPY":
            sink.error(loc, f"weights file '{name}' is a single .npy array, not an .npz archive "
                       "(save the weights with numpy.savez)")
            return {}
        if not magic.startswith(b"PK"):
            sink.error(loc, f"weights file '{name}' is not an .npz archive (save the weights with numpy.savez)")
            return {}
        with np.load(path, allow_pickle=False) as archive:
            weights: dict[str, Array] = {}
            unloadable = False
            for key in archive.files:
                try:
                    value = archive[key]
                except ValueError as error:
                    unloadable = True
                    if "pickle" in str(error) or "Object arrays" in str(error):
                        sink.error(loc, f"weights file '{name}' holds '{key}' as an object array, which nndsl "
                                   "does not load (it would need unpickling); save numeric arrays only")
                    else:
                        sink.error(loc, f"weights file '{name}': '{key}' is not a readable array ({error})")
                    continue
                if not isinstance(value, np.ndarray):  # a zip member that is not an .npy array
                    unloadable = True
                    sink.error(loc, f"weights file '{name}': '{key}' is not a .npy array")
                    continue
                weights[key] = value
            return {} if unloadable else weights
    except FileNotFoundError:
        where = "" if shown is None else f" (looked for {path})"
        sink.error(loc, f"weights file '{name}' not found{where}")
    except IsADirectoryError:
        sink.error(loc, f"weights file '{name}' is a directory")
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        sink.error(loc, f"weights file '{name}' is not a readable .npz archive ({error})")
    return {}


class _Resolver:
    def __init__(self, program: ast.Program, path: str, sink: DiagnosticSink) -> None:
        self.program = program
        self.path = path
        self.sink = sink
        self.definitions: dict[str, ast.InputDecl | ast.LayerDecl] = {}
        self.weights: dict[str, Array] = {}
        self.weights_path: Path | None = None
        self.weights_decl: ast.WeightsDecl | None = None
        self.target: Target | None = None
        self.target_decl: ast.TargetDecl | None = None

    def run(self) -> ResolvedProgram | None:
        self.collect()
        inputs = [d for d in self.definitions.values() if isinstance(d, ast.InputDecl)]
        output = self.find_output()
        bound = {
            decl.name: layer
            for decl in self.definitions.values()
            if isinstance(decl, ast.LayerDecl) and (layer := self.bind(decl)) is not None
        }
        if not inputs:
            self.sink.error(self.program.loc, "the network has no input: write 'input NAME : TYPE', e.g. "
                            "'input x : f32[64]'")
        for extra in inputs[1:]:
            self.sink.error(extra.loc, f"a network has exactly one input ('{inputs[0].name}' on line "
                            f"{inputs[0].loc.line} is already one)")
        if output is None or len(inputs) != 1 or self.sink.errors:
            return None
        order = self.order(output, bound)
        if order is None:
            return None
        used = {layer.decl.name for layer in order}
        for name, decl in self.definitions.items():
            if isinstance(decl, ast.LayerDecl) and name not in used:
                self.sink.warning(decl.loc, f"'{name}' is computed but never used by the output '{output[0]}'")
        return ResolvedProgram(
            self.program,
            self.path,
            inputs[0],
            tuple(order),
            output[0],
            output[1],
            self.weights,
            self.weights_path,
            self.target,
        )

    def collect(self) -> None:
        for statement in self.program.statements:
            match statement:
                case ast.TargetDecl():
                    if self.target_decl is not None:
                        self.sink.error(statement.loc, f"a network has one target (first at line "
                                        f"{self.target_decl.loc.line})")
                    else:
                        self.target_decl = statement
                        self.target = resolve_target(statement, self.sink)
                case ast.WeightsDecl():
                    self.load(statement)
                case ast.InputDecl() | ast.LayerDecl():
                    first = self.definitions.get(statement.name)
                    if first is not None:
                        self.sink.error(
                            statement.loc, f"'{statement.name}' is already defined (line {first.loc.line})"
                        )
                    else:
                        self.definitions[statement.name] = statement
                case ast.OutputDecl():
                    pass

    def load(self, decl: ast.WeightsDecl) -> None:
        if self.weights_decl is not None:
            self.sink.error(decl.loc, f"a network has one weights file (first at line {self.weights_decl.loc.line})")
            return
        self.weights_decl = decl
        base = Path(self.path).parent if self.path and not self.path.startswith("<") else Path.cwd()
        self.weights_path = (base / decl.path).resolve()
        self.weights = load_weights(self.weights_path, decl.loc, self.sink, decl.path)

    def find_output(self) -> tuple[str, Loc] | None:
        outputs: list[tuple[str, Loc]] = []
        for statement in self.program.statements:
            if isinstance(statement, ast.OutputDecl):
                if statement.name not in self.definitions:
                    self.sink.error(statement.loc, f"unknown tensor '{statement.name}' marked as output")
                outputs.append((statement.name, statement.loc))
            elif isinstance(statement, ast.LayerDecl) and statement.is_output:
                outputs.append((statement.name, statement.loc))
        if not outputs:
            self.sink.error(self.program.loc, "the network has no output: write 'output NAME = ...' or 'output NAME'")
            return None
        if len(outputs) > 1:
            self.sink.error(outputs[1][1], f"a network has exactly one output ('{outputs[0][0]}' is already one)")
            return None
        return outputs[0]

    def bind(self, decl: ast.LayerDecl) -> BoundLayer | None:
        call = decl.call
        signature = SIGNATURES.get(call.op)
        if signature is None:
            hint = _did_you_mean(call.op, list(SIGNATURES))
            self.sink.error(call.loc, f"unknown operator '{call.op}'{hint}")
            return None
        count = len(call.args)
        maximum = signature.max_args
        if count < signature.min_args or (maximum is not None and count > maximum):
            if maximum is None:
                expected = f"at least {signature.min_args}"
            elif signature.min_args == maximum:
                expected = str(maximum)
            else:
                expected = f"{signature.min_args} to {maximum}"
            plural = "" if expected == "1" else "s"
            self.sink.error(
                call.loc, f"'{call.op}' takes {expected} argument{plural}, got {count} (usage: {signature.usage})"
            )
            return None
        tensor_count = count if signature.variadic else signature.tensors
        tensors = call.args[:tensor_count]
        weight_names = signature.weights + signature.optional_weights
        weights = dict(zip(weight_names, call.args[tensor_count:], strict=False))
        ok = all([self.check_tensor_ref(ref) for ref in tensors] + [self.check_weight_ref(r) for r in weights.values()])
        return BoundLayer(decl, signature, tuple(tensors), weights) if ok else None

    def check_tensor_ref(self, ref: ast.Ref) -> bool:
        if ref.name in self.definitions:
            return True
        if ref.name in self.weights:
            self.sink.error(ref.loc, f"'{ref.name}' is a weight array, but a tensor is expected here")
        else:
            hint = _did_you_mean(ref.name, list(self.definitions))
            self.sink.error(ref.loc, f"unknown tensor '{ref.name}'{hint}")
        return False

    def check_weight_ref(self, ref: ast.Ref) -> bool:
        if ref.name in self.weights:
            return True
        if ref.name in self.definitions:
            self.sink.error(ref.loc, f"'{ref.name}' is a tensor, but a weight array is expected here")
        elif self.weights_decl is None:
            self.sink.error(ref.loc, f"weight '{ref.name}' used, but the network declares no 'weights \"FILE.npz\"'")
        elif self.weights:
            hint = _did_you_mean(ref.name, list(self.weights))
            self.sink.error(ref.loc, f"weight '{ref.name}' is not in '{self.weights_decl.path}'{hint}")
        else:
            return False  # the weights file itself failed to load; that error stands alone
        return False

    def order(self, output: tuple[str, Loc], bound: dict[str, BoundLayer]) -> list[BoundLayer] | None:
        """Layers the output depends on, dependencies first; reports a cycle if there is one."""
        order: list[BoundLayer] = []
        state: dict[str, str] = {}  # "visiting" or "done"
        stack: list[str] = []

        def visit(name: str) -> bool:
            if state.get(name) == "done" or name not in bound:
                return True
            if state.get(name) == "visiting":
                cycle = [*stack[stack.index(name) :], name]
                self.sink.error(bound[name].decl.loc, f"cycle: {' -> '.join(cycle)}")
                return False
            state[name] = "visiting"
            stack.append(name)
            ok = all(visit(ref.name) for ref in bound[name].tensors)
            stack.pop()
            state[name] = "done"
            order.append(bound[name])
            return ok

        return order if visit(output[0]) else None


def resolve(program: ast.Program, path: str, sink: DiagnosticSink) -> ResolvedProgram | None:
    """Bind the program's names; None (with errors in ``sink``) when that fails."""
    return _Resolver(program, path, sink).run()
