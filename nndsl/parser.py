"""`.nn` text to :mod:`nndsl.ast`: Lark (LALR) with positions, then dataclasses.

Syntax errors become one :class:`~nndsl.diagnostics.NNError` that says, in
words, what was expected where, with the offending line and a caret.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import Any

import lark
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from nndsl import ast
from nndsl.diagnostics import Diagnostic, Loc, NNError, Severity

# Terminals described the way a user would name them in an error message.
_TERMINAL_WORDS = {
    "NAME": "a name",
    "STRING": 'a quoted string such as "weights.npz"',
    "SIGNED_NUMBER": "a number",
    "SIGNED_INT": "an integer",
    "INT": "a whole number",
    "QUANTITY": "a quantity such as 256 KiB",
    "RELATION": "'=' or '<='",
    "$END": "the end of the file",
}

_QUANTITY = re.compile(r"([0-9.eE+-]+)\s*([A-Za-z]+)")


@functools.cache
def _parser() -> Lark:
    grammar = resources.files("nndsl.grammar").joinpath("nn.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=True)


def _loc(path: str, item: Token | Any) -> Loc:
    line, column = int(item.line or 0), int(item.column or 0)
    return Loc(path, line, column, int(item.end_line or line), int(item.end_column or column))


def _number(text: str) -> float | int:
    value = float(text)
    if value.is_integer() and all(c not in text for c in ".eE"):
        return int(text)
    return value


class _ToAst(Transformer[Token, Any]):
    """Builds AST nodes bottom-up; each rule method receives its children."""

    def __init__(self, path: str, source: str) -> None:
        super().__init__()
        self.path = path
        self.source = source

    def loc(self, meta: Any) -> Loc:
        return _loc(self.path, meta)

    @v_args(meta=True)
    def start(self, meta: Any, children: list[Any]) -> ast.Program:
        name_token: Token = children[0]
        return ast.Program(self.loc(meta), str(name_token), tuple(children[1:]), self.source)

    def network_decl(self, children: list[Token]) -> Token:
        return children[0]

    @v_args(meta=True)
    def target_decl(self, meta: Any, children: list[Any]) -> ast.TargetDecl:
        name, body = children
        return ast.TargetDecl(self.loc(meta), str(name), tuple(body or ()))

    def target_body(self, children: list[ast.TargetField]) -> list[ast.TargetField]:
        return children

    @v_args(meta=True)
    def target_field(self, meta: Any, children: list[Any]) -> ast.TargetField:
        name, relation, amount = children
        if isinstance(amount, Token):  # QUANTITY: number and unit in one token
            match = _QUANTITY.fullmatch(str(amount))
            assert match is not None, "the grammar's QUANTITY and _QUANTITY disagree"
            quantity = ast.Quantity(_loc(self.path, amount), float(match[1]), match[2])
        else:
            quantity = ast.Quantity(self.loc(meta), float(amount), None)
        return ast.TargetField(self.loc(meta), str(name), str(relation), quantity)

    @v_args(meta=True)
    def weights_decl(self, meta: Any, children: list[Token]) -> ast.WeightsDecl:
        return ast.WeightsDecl(self.loc(meta), str(children[0])[1:-1])

    @v_args(meta=True)
    def input_decl(self, meta: Any, children: list[Any]) -> ast.InputDecl:
        name, type_ = children
        return ast.InputDecl(_loc(self.path, name), str(name), type_)

    @v_args(meta=True)
    def layer_decl(self, meta: Any, children: list[Any]) -> ast.LayerDecl:
        name, call, type_ = children
        return ast.LayerDecl(_loc(self.path, name), str(name), call, type_, is_output=False)

    @v_args(meta=True)
    def output_decl(self, meta: Any, children: list[Any]) -> ast.LayerDecl | ast.OutputDecl:
        name, call, type_ = children
        if call is None:
            return ast.OutputDecl(_loc(self.path, name), str(name))
        return ast.LayerDecl(_loc(self.path, name), str(name), call, type_, is_output=True)

    @v_args(meta=True)
    def expr(self, meta: Any, children: list[Any]) -> ast.Call:
        call: ast.Call = children[0]
        activations = tuple(ast.Activation(_loc(self.path, t), str(t)) for t in children[1:])
        return ast.Call(call.loc, call.op, call.args, call.kwargs, activations)

    @v_args(meta=True)
    def call(self, meta: Any, children: list[Any]) -> ast.Call:
        op = children[0]
        args = [c for c in children[1:] if c is not None]
        refs = tuple(a for a in args if isinstance(a, ast.Ref))
        kwargs = tuple(a for a in args if isinstance(a, ast.KeywordArg))
        return ast.Call(_loc(self.path, op), str(op), refs, kwargs, ())

    @v_args(meta=True)
    def ref(self, meta: Any, children: list[Token]) -> ast.Ref:
        return ast.Ref(self.loc(meta), ".".join(str(t) for t in children))

    @v_args(meta=True)
    def keyword_arg(self, meta: Any, children: list[Any]) -> ast.KeywordArg:
        name, value = children
        return ast.KeywordArg(self.loc(meta), str(name), value)

    def number(self, children: list[Token]) -> float | int:
        return _number(str(children[0]))

    def name_value(self, children: list[Token]) -> str:
        return str(children[0])

    def string_value(self, children: list[Token]) -> str:
        return str(children[0])[1:-1]

    def tuple_value(self, children: list[ast.Value]) -> tuple[ast.Value, ...]:
        return tuple(children)

    def type_annotation(self, children: list[ast.TypeExpr]) -> ast.TypeExpr:
        return children[0]

    @v_args(meta=True)
    def tensor_type(self, meta: Any, children: list[Any]) -> ast.TypeExpr:
        dtype, shape, quant = children
        return ast.TypeExpr(self.loc(meta), str(dtype), shape, quant)

    def shape(self, children: list[Token]) -> tuple[int, ...]:
        return tuple(int(t) for t in children)

    @v_args(meta=True)
    def quant(self, meta: Any, children: list[Any]) -> ast.QuantSpec:
        numerator, denominator, zero = children
        scale = float(numerator) if denominator is None else self._ratio(meta, numerator, denominator)
        return ast.QuantSpec(self.loc(meta), scale, int(zero))

    def _ratio(self, meta: Any, numerator: float, denominator: float) -> float:
        if float(denominator) == 0.0:
            raise NNError.at(self.loc(meta), "scale divides by zero")
        return float(numerator) / float(denominator)


def _describe_expected(parser: Lark, expected: set[str]) -> str:
    words = []
    for name in sorted(expected):
        if name in _TERMINAL_WORDS:
            words.append(_TERMINAL_WORDS[name])
            continue
        try:
            pattern = parser.get_terminal(name).pattern
        except KeyError:
            words.append(name)
            continue
        words.append(f"'{pattern.value}'" if isinstance(pattern, lark.lexer.PatternStr) else name.lower())
    unique = sorted(set(words))
    if len(unique) == 1:
        return unique[0]
    return ", ".join(unique[:-1]) + " or " + unique[-1]


def _found(error: UnexpectedInput, source: str) -> str:
    if isinstance(error, UnexpectedToken):
        if error.token.type == "$END":
            return "the end of the file"
        return f"'{error.token}'"
    if isinstance(error, UnexpectedCharacters):
        return f"'{source[error.pos_in_stream or 0]}'"
    return "the end of the file"


def _syntax_error(error: UnexpectedInput, source: str, path: str) -> NNError:
    parser = _parser()
    expected: set[str] = set()
    if isinstance(error, UnexpectedToken | UnexpectedEOF):
        expected = set(error.expected)
    elif isinstance(error, UnexpectedCharacters):
        expected = set(error.allowed or ())
    line = getattr(error, "line", -1)
    column = getattr(error, "column", -1)
    if line is None or line < 1:  # at the end of the file
        lines = source.splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
    found = _found(error, source)
    if expected:
        message = f"syntax error: expected {_describe_expected(parser, expected)}, found {found}"
    else:
        message = f"syntax error: unexpected {found}"
    try:
        context = error.get_context(source).rstrip("\n")
    except (IndexError, TypeError):
        context = ""
    return NNError([Diagnostic(Severity.ERROR, message, Loc(path, line, column), context)])


def parse(source: str, path: str = "<string>") -> ast.Program:
    """Parse `.nn` text; ``path`` only labels locations."""
    try:
        tree = _parser().parse(source)
    except UnexpectedInput as error:
        raise _syntax_error(error, source, path) from None
    except lark.exceptions.VisitError as error:  # an NNError raised inside the transformer
        if isinstance(error.orig_exc, NNError):
            raise error.orig_exc from None
        raise
    try:
        program = _ToAst(path, source).transform(tree)
    except lark.exceptions.VisitError as error:
        if isinstance(error.orig_exc, NNError):
            raise error.orig_exc from None
        raise
    assert isinstance(program, ast.Program)
    return program
