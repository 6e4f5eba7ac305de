"""Bind names: tensors to the statements that define them, weights to `.npz` arrays.

Produces the layers in an order where every tensor is defined before it is
used (the file may define them in any order), and reports unknown and
duplicate names, wrong arity, cycles and unused inputs, all at once.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

import numpy as np
import numpy.typing as npt

from nndsl import ast
from nndsl.diagnostics import DiagnosticSink, Loc, WarningFlag, did_you_mean
from nndsl.ops import SIGNATURES, OpSignature
from nndsl.target import Target, resolve_target
from nndsl.types import MAX_LAYERS, MAX_WEIGHT_ELEMENTS, element_count, power_text

Array = npt.NDArray[np.generic]


@dataclass(frozen=True)
class BoundLayer:
    """A layer statement with its arguments split into tensors and weights."""

    decl: ast.LayerDecl
    signature: OpSignature
    tensors: tuple[ast.Ref, ...]
    weights: dict[str, ast.Ref]
    operands: tuple[ast.Ref | ast.Literal, ...] = ()  # an op with constant operands: all of them, in order


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


WEIGHT_COMPANIONS = (".scale", ".zero_point", ".frac_bits")  # arrays check.py reads next to a weight NAME
_READABLE_KINDS = "biuf"  # booleans, integers and floats: the arrays a model's weights can be
_COMPRESSIONS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}


def open_regular_file(path: Path) -> BinaryIO:
    """``path`` opened for reading, refusing anything but a regular file (a FIFO or a device never ends).

    Opening without blocking and checking the opened file leaves no gap between the check and the use.
    """
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"not a regular file ({_file_kind(mode)})", str(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))
    return next((kind for test, kind in kinds if test(mode)), "not a file")


def absolute_path(path: Path) -> Path:
    """``path`` with its symbolic links resolved where they can be (a link loop stays as written)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop (RuntimeError before Python 3.13), a NUL
        return Path(os.path.abspath(path))


@dataclass(frozen=True)
class _Header:
    """What a ``.npy`` member declares before its data: enough to know what reading it would cost."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    offset: int  # bytes before the data

    @property
    def nbytes(self) -> int:
        return element_count(self.shape) * self.dtype.itemsize


def read_npy_header(stream: IO[bytes]) -> _Header | None:
    """The ``.npy`` header at the stream's position (None for a format version nndsl does not read).

    Raises ``ValueError`` for a stream that is not a ``.npy`` array; reads nothing beyond the header.
    """
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        return None
    return _Header(tuple(int(d) for d in shape), np.dtype(dtype), stream.tell())


class WeightsArchive:
    """An open ``.npz``: the names of its arrays, each read only when the model uses it.

    Nothing is read before its zip entry and ``.npy`` header have been checked against the limits and
    against the member's size, so an archive cannot make nndsl allocate more than the limits allow.
    """

    def __init__(self, stream: BinaryIO, name: str, loc: Loc) -> None:
        self.stream = stream
        self.zip = zipfile.ZipFile(stream)
        self.prefix = f"weights file '{name}'"
        self.loc = loc
        self.members = {_key(info.filename): info for info in self.zip.infolist()}
        self.loaded_elements = 0

    def close(self) -> None:
        self.zip.close()
        self.stream.close()

    def read(self, key: str, sink: DiagnosticSink) -> Array | None:
        """The array ``key``; None, with an error at the weights file, when it cannot be read safely."""
        try:
            problem = self.problem(key)
            if problem is None:
                with self.zip.open(self.members[key]) as member:
                    return np.asarray(np.lib.format.read_array(member, allow_pickle=False))
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError, ValueError) as error:
            problem = f"{self.prefix}: '{key}' is not a readable array ({error})"
        sink.error(self.loc, problem)
        return None

    def problem(self, key: str) -> str | None:
        """Why ``key`` must not be read (None when it may: its elements then count against the limit)."""
        info = self.members[key]
        problem = self.entry_problem(key, info)
        if problem is not None:
            return problem
        header = self.header(info)
        if header is None:
            return f"{self.prefix}: '{key}' is not a .npy array of format version 1.0 or 2.0 (numpy.save writes those)"
        problem = self.header_problem(key, info, header)
        if problem is None:
            self.loaded_elements += element_count(header.shape)
        return problem

    def entry_problem(self, key: str, info: zipfile.ZipInfo) -> str | None:
        """Why the zip entry cannot hold an array nndsl reads (None when it can)."""
        if not info.filename.endswith(".npy"):
            return f"{self.prefix}: '{key}' is not a .npy array"
        if info.flag_bits & 0x1:
            return f"{self.prefix}: '{key}' is encrypted; save the weights with numpy.savez (no password)"
        if info.compress_type not in _COMPRESSIONS:
            return (f"{self.prefix}: '{key}' uses zip compression method {info.compress_type}, which nndsl does "
                    f"not read (numpy.savez and numpy.savez_compressed write stored or deflated members)")
        return None

    def header(self, info: zipfile.ZipInfo) -> _Header | None:
        """The member's ``.npy`` header (None for a format version nndsl does not read)."""
        with self.zip.open(info) as member:
            return read_npy_header(member)

    def header_problem(self, key: str, info: zipfile.ZipInfo, header: _Header) -> str | None:
        """Why the declared array must not be read: its dtype, its size, or a member too short to hold it."""
        dtype, shown = header.dtype, f"shape {_shape_text(header.shape)}"
        count = element_count(header.shape)
        if dtype.hasobject:
            return (f"{self.prefix} holds '{key}' as an object array, which nndsl does not load (it would need "
                    "unpickling); save numeric arrays only")
        if dtype.kind not in _READABLE_KINDS:
            return f"{self.prefix}: '{key}' is an array of {dtype}; weights are arrays of integers or floats"
        if count == 0:
            return f"{self.prefix}: '{key}' has no elements ({shown})"
        if count > MAX_WEIGHT_ELEMENTS:
            return (f"{self.prefix}: '{key}' has {count} elements ({shown}); nndsl takes weight arrays of at "
                    f"most {power_text(MAX_WEIGHT_ELEMENTS)} elements")
        if header.offset + header.nbytes > info.file_size:
            return (f"{self.prefix}: '{key}' declares {header.nbytes} bytes of {dtype} ({shown}), but its zip "
                    f"member holds {max(info.file_size - header.offset, 0)} (a damaged archive)")
        if self.loaded_elements + count > MAX_WEIGHT_ELEMENTS:
            return (f"{self.prefix}: the arrays the model uses reach {self.loaded_elements + count} elements with "
                    f"'{key}'; nndsl takes at most {power_text(MAX_WEIGHT_ELEMENTS)} elements of weights in all")
        return None


def _key(member: str) -> str:
    """An array's key in the archive: its member name without ``.npy``, as ``numpy.load`` names it."""
    return member[: -len(".npy")] if member.endswith(".npy") else member


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def open_weights(path: Path, loc: Loc, sink: DiagnosticSink, shown: str | None = None) -> WeightsArchive | None:
    """The ``.npz`` at ``path``, its arrays not yet read; None (with an error at ``loc``) when it is not one.

    ``shown`` is the path as the user wrote it, for messages (default: ``path``).
    """
    name = shown or str(path)
    stream: BinaryIO | None = None
    if "\0" in str(path):
        sink.error(loc, f"weights file {name!r} has a NUL character in its name")
        return None
    try:
        stream = open_regular_file(path)
        magic = stream.read(6)
        if magic == b"\x93NUMPY":
            sink.error(loc, f"weights file '{name}' is a single .npy array, not an .npz archive "
                       "(save the weights with numpy.savez)")
        elif not magic.startswith(b"PK"):
            sink.error(loc, f"weights file '{name}' is not an .npz archive (save the weights with numpy.savez)")
        else:
            stream.seek(0)
            archive = WeightsArchive(stream, name, loc)
            stream = None  # the archive owns it now
            return archive
    except FileNotFoundError:
        where = "" if shown is None else f" (looked for {path})"
        sink.error(loc, f"weights file '{name}' not found{where}")
    except IsADirectoryError:
        sink.error(loc, f"weights file '{name}' is a directory")
    except OSError as error:
        sink.error(loc, f"weights file '{name}' cannot be read: {error.strerror or error}")
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as error:
        sink.error(loc, f"weights file '{name}' is not a readable .npz archive ({error})")
    finally:
        if stream is not None:
            stream.close()
    return None


class _Resolver:
    def __init__(self, program: ast.Program, path: str, sink: DiagnosticSink, archive: bytes | None) -> None:
        self.program = program
        self.path = path
        self.sink = sink
        self.in_memory = archive
        self.definitions: dict[str, ast.InputDecl | ast.LayerDecl] = {}
        self.archive: WeightsArchive | None = None
        self.weights: dict[str, Array] = {}  # the arrays the model uses, read once it is bound
        self.weights_path: Path | None = None
        self.weights_decl: ast.WeightsDecl | None = None
        self.target: Target | None = None
        self.target_decl: ast.TargetDecl | None = None

    def run(self) -> ResolvedProgram | None:
        try:
            return self.resolve()
        finally:
            if self.archive is not None:
                self.archive.close()

    def resolve(self) -> ResolvedProgram | None:
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
        if order is None or not self.within_layer_limit(order) or not self.read_weights(order):
            return None
        used = {layer.decl.name for layer in order}
        for name, decl in self.definitions.items():
            if isinstance(decl, ast.LayerDecl) and name not in used:
                self.sink.warning(decl.loc, f"'{name}' is computed but never used by the output '{output[0]}'",
                                  WarningFlag.UNUSED)
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
        if self.in_memory is not None:  # checked as a file's would be, but never written out
            self.archive = WeightsArchive(io.BytesIO(self.in_memory), decl.path, decl.loc)
            return
        base = Path(self.path).parent if self.path and not self.path.startswith("<") else Path.cwd()
        self.weights_path = absolute_path(base / decl.path)
        self.archive = open_weights(self.weights_path, decl.loc, self.sink, decl.path)

    @property
    def weight_names(self) -> list[str]:
        return list(self.archive.members) if self.archive is not None else []

    def read_weights(self, layers: list[BoundLayer]) -> bool:
        """Read the arrays ``layers`` use (with their scales, zero points, fraction bits), and only those."""
        if self.archive is None:
            return True
        members = self.archive.members
        used = dict.fromkeys(
            key
            for layer in layers
            for ref in layer.weights.values()
            for key in (ref.name, *(ref.name + suffix for suffix in WEIGHT_COMPANIONS))
            if key in members
        )
        for key in used:
            array = self.archive.read(key, self.sink)
            if array is not None:
                self.weights[key] = array
        return not self.sink.errors

    def within_layer_limit(self, order: list[BoundLayer]) -> bool:
        if len(order) <= MAX_LAYERS:
            return True
        first = order[MAX_LAYERS].decl
        self.sink.error(first.loc, f"the output depends on {len(order)} layers ('{first.name}' is layer "
                        f"{MAX_LAYERS + 1}); nndsl takes networks of at most {MAX_LAYERS} layers")
        return False

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
            hint = did_you_mean(call.op, list(SIGNATURES))
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
        if signature.constants:
            return self.bind_operands(decl, signature)
        literal = next((a for a in call.args if isinstance(a, ast.Literal)), None)
        if literal is not None:
            self.sink.error(literal.loc, f"'{call.op}' takes no number as an argument (usage: {signature.usage})")
            return None
        refs = [a for a in call.args if isinstance(a, ast.Ref)]
        tensor_count = count if signature.variadic else signature.tensors
        tensors = refs[:tensor_count]
        weight_names = signature.weights + signature.optional_weights
        weights = dict(zip(weight_names, refs[tensor_count:], strict=False))
        ok = all([self.check_tensor_ref(ref) for ref in tensors] + [self.check_weight_ref(r) for r in weights.values()])
        return BoundLayer(decl, signature, tuple(tensors), weights) if ok else None

    def bind_operands(self, decl: ast.LayerDecl, signature: OpSignature) -> BoundLayer | None:
        """Operands that are tensors, weight arrays (bound as ``x0``, ``x1``) or numbers; at least one a tensor."""
        tensors: list[ast.Ref] = []
        weights: dict[str, ast.Ref] = {}
        ok = True
        for index, arg in enumerate(decl.call.args):
            if isinstance(arg, ast.Literal):
                continue
            if arg.name in self.definitions:
                tensors.append(arg)
            elif arg.name in self.weight_names:
                weights[f"x{index}"] = arg
            else:
                ok = self.check_tensor_ref(arg) and ok
        if ok and not tensors:
            self.sink.error(decl.call.loc, f"'{decl.call.op}' needs a computed tensor among its operands (a layer "
                            f"of constants only is a constant: compute it into the weights file)")
            return None
        return BoundLayer(decl, signature, tuple(tensors), weights, decl.call.args) if ok else None

    def check_tensor_ref(self, ref: ast.Ref) -> bool:
        if ref.name in self.definitions:
            return True
        if ref.name in self.weight_names:
            self.sink.error(ref.loc, f"'{ref.name}' is a weight array, but a tensor is expected here")
        else:
            hint = did_you_mean(ref.name, list(self.definitions))
            self.sink.error(ref.loc, f"unknown tensor '{ref.name}'{hint}")
        return False

    def check_weight_ref(self, ref: ast.Ref) -> bool:
        if ref.name in self.weight_names:
            return True
        if ref.name in self.definitions:
            self.sink.error(ref.loc, f"'{ref.name}' is a tensor, but a weight array is expected here")
        elif self.weights_decl is None:
            self.sink.error(ref.loc, f"weight '{ref.name}' used, but the network declares no 'weights \"FILE.npz\"'")
        elif self.archive is not None:
            hint = did_you_mean(ref.name, self.weight_names)
            self.sink.error(ref.loc, f"weight '{ref.name}' is not in '{self.weights_decl.path}'{hint}")
        else:
            return False  # the weights file itself failed to load; that error stands alone
        return False

    def order(self, output: tuple[str, Loc], bound: dict[str, BoundLayer]) -> list[BoundLayer] | None:
        """Layers the output depends on, dependencies first; reports a cycle if there is one.

        A depth-first walk with its own stack, so that a chain of any length needs no recursion.
        """
        order: list[BoundLayer] = []
        done: set[str] = set()
        path: list[str] = []  # the layers being visited, outermost first
        pending: list[Iterator[ast.Ref]] = []  # each one's inputs not yet visited
        if output[0] in bound:
            path.append(output[0])
            pending.append(iter(bound[output[0]].tensors))
        while path:
            ref = next(pending[-1], None)
            if ref is None:
                name = path.pop()
                pending.pop()
                done.add(name)
                order.append(bound[name])
            elif ref.name in done or ref.name not in bound:
                continue
            elif ref.name in path:
                cycle = [*path[path.index(ref.name) :], ref.name]
                self.sink.error(bound[ref.name].decl.loc, f"cycle: {' -> '.join(cycle)}")
                return None
            else:
                path.append(ref.name)
                pending.append(iter(bound[ref.name].tensors))
        return order


def resolve(program: ast.Program, path: str, sink: DiagnosticSink, archive: bytes | None = None
            ) -> ResolvedProgram | None:
    """Bind the program's names; None (with errors in ``sink``) when that fails.

    ``archive``: the ``.npz`` bytes the ``weights`` statement stands for (a model built in Python), read
    instead of the file it names.
    """
    return _Resolver(program, path, sink, archive).run()
