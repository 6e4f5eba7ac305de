"""`.nn` text to :mod:`nndsl.ast`: Lark (LALR) with positions, then dataclasses.

Syntax errors become one :class:`~nndsl.diagnostics.NNError` that says, in
words, what was expected where, with the offending line and a caret.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import replace
from importlib import resources
from typing import Any, TypeVar

import lark
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from nndsl import ast
from nndsl.cnames import LANGUAGE_KEYWORDS, c_name_problem
from nndsl.diagnostics import Diagnostic, Loc, NNError, Severity

# Terminals described the way a user would name them in an error message.
_TERMINAL_WORDS = {
    "NAME": "a name",
    "STRING": 'a quoted string such as "weights.npz"',
    "SIGNED_NUMBER": "a number",
    "SIGNED_INT": "an integer",
    "INT": "a whole number",
    "QUANTITY": "a quantity such as 256 KiB",
    "QFORMAT": "a fixed-point format such as q3.4",
    "RELATION": "'=' or '<='",
    "$END": "the end of the file",
}

_QUANTITY = re.compile(r"([0-9.eE+-]+)\s*([A-Za-z]+)")

MAX_SOURCE_CHARS = 2**18  # 256 KiB holds thousands of layers; parsing it takes about a second
MAX_NESTING = 32  # parentheses within parentheses: a value needs 2 (pads); the tree is transformed recursively
_BOM = "\ufeff"
_N = TypeVar("_N", int, float)
# Comments and strings, whose parentheses do not nest (a string ends at the line's end, as in the grammar).
_NOT_CODE = re.compile(r'#[^\n]*|"[^"\n]*"?')
_PARENTHESES = re.compile(r"[()]")

# Statement keywords: never names, even where Lark's contextual lexer would take them as one.
KEYWORDS = LANGUAGE_KEYWORDS
_TYPE_EXAMPLE = "such as f32[64], i8 @ scale(0.05) zero(0) or q7"


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


def _converted(token: Token, path: str, convert: Callable[[str], _N]) -> _N:
    """A number token converted; more digits than Python converts (4300) is an error, not a traceback."""
    try:
        return convert(str(token))
    except ValueError:
        raise NNError.at(_loc(path, token), f"syntax error: a number of {len(token)} digits") from None


def _whole(token: Token, path: str) -> int:
    return _converted(token, path, int)


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
        name = self.not_keyword(children[0], "the network")
        problem = c_name_problem(str(name))
        if problem is not None:  # the generated C names begin with it
            raise NNError.at(_loc(self.path, name), f"the network name '{name}' {problem}; rename the network")
        return name

    def not_keyword(self, name: Token, what: str) -> Token:
        if str(name) in KEYWORDS:
            raise NNError.at(_loc(self.path, name), f"syntax error: '{name}' is a keyword and cannot name {what}")
        return name

    @v_args(meta=True)
    def target_decl(self, meta: Any, children: list[Any]) -> ast.TargetDecl:
        name, body = children
        return ast.TargetDecl(self.loc(meta), str(name), tuple(body or ()))

    def target_body(self, children: list[ast.TargetField]) -> list[ast.TargetField]:
        return children

    @v_args(meta=True)
    def target_field(self, meta: Any, children: list[Any]) -> ast.TargetField:
        name, relation, amount = children
        if isinstance(amount, Token) and amount.type == "NAME":  # a named setting
            quantity = ast.Quantity(_loc(self.path, amount), 0.0, None)
            return ast.TargetField(self.loc(meta), str(name), str(relation), quantity, word=str(amount))
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
        self.not_keyword(name, "a tensor")
        return ast.InputDecl(_loc(self.path, name), str(name), type_)

    @v_args(meta=True)
    def layer_decl(self, meta: Any, children: list[Any]) -> ast.LayerDecl:
        name, call, type_ = children
        self.not_keyword(name, "a tensor")
        return ast.LayerDecl(_loc(self.path, name), str(name), call, type_, is_output=False)

    @v_args(meta=True)
    def output_decl(self, meta: Any, children: list[Any]) -> ast.LayerDecl | ast.OutputDecl:
        name, call, type_ = children
        self.not_keyword(name, "a tensor")
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
        positional = tuple(a for a in args if isinstance(a, ast.Ref | ast.Literal))
        kwargs = tuple(a for a in args if isinstance(a, ast.KeywordArg))
        return ast.Call(_loc(self.path, op), str(op), positional, kwargs, ())

    @v_args(meta=True)
    def literal(self, meta: Any, children: list[Token]) -> ast.Literal:
        return ast.Literal(self.loc(meta), _converted(children[0], self.path, _number))

    @v_args(meta=True)
    def ref(self, meta: Any, children: list[Token]) -> ast.Ref:
        return ast.Ref(self.loc(meta), ".".join(str(t) for t in children))

    @v_args(meta=True)
    def keyword_arg(self, meta: Any, children: list[Any]) -> ast.KeywordArg:
        name, value = children
        return ast.KeywordArg(self.loc(meta), str(name), value)

    def number(self, children: list[Token]) -> float | int:
        return _converted(children[0], self.path, _number)

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
        if str(dtype) in KEYWORDS:  # `x = relu(y) :` followed by the next statement
            raise NNError.at(_loc(self.path, dtype), f"syntax error: expected a type after ':', {_TYPE_EXAMPLE}, "
                             f"found the keyword '{dtype}'")
        return ast.TypeExpr(self.loc(meta), str(dtype), shape, quant)

    def shape(self, children: list[Token]) -> tuple[int, ...]:
        return tuple(_whole(t, self.path) for t in children)

    @v_args(meta=True)
    def quant(self, meta: Any, children: list[Any]) -> ast.QuantSpec:
        numerator, denominator, zero = children
        scale = float(numerator) if denominator is None else self._ratio(meta, numerator, denominator)
        return ast.QuantSpec(self.loc(meta), scale, _whole(zero, self.path))

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
    if isinstance(error, UnexpectedCharacters) and error.pos_in_stream is not None:
        return f"'{source[error.pos_in_stream]}'"
    return "the end of the file"


def _shifted(error: UnexpectedInput) -> list[Any]:
    """What the parser had accepted when it stopped: tokens and reduced subtrees, oldest first."""
    parser = getattr(error, "interactive_parser", None)
    if parser is not None:
        return list(parser.parser_state.value_stack)
    return list(getattr(error, "token_history", None) or [])  # errors raised by the contextual lexer


def _keyword_misuse(error: UnexpectedInput, shifted: list[Any]) -> tuple[Token, str] | None:
    """A keyword where a name belongs (``input = ...``, ``network input``): the keyword and the message."""
    first = shifted[0] if shifted else None
    if isinstance(first, lark.Tree) and first.data == "network_decl":
        name = first.children[0]
        if isinstance(name, Token) and str(name) in KEYWORDS:
            return name, f"syntax error: 'network' needs the network's name, found the keyword '{name}'"
    last = shifted[-1] if shifted else None
    found = getattr(error, "token", None)
    if isinstance(last, Token) and str(last) in KEYWORDS and isinstance(found, Token) and found.type == "EQUAL":
        return last, f"syntax error: '{last}' is a keyword and cannot name a tensor"
    return None


def _missing_type(error: UnexpectedInput, shifted: list[Any]) -> Token | None:
    """The ':' of ``input x :`` or ``y = relu(x) :`` with no type: the next statement's name became the type."""
    found = getattr(error, "token", None)
    if len(shifted) >= 2 and isinstance(found, Token) and found.type in ("EQUAL", "LPAR"):
        colon, name = shifted[-2:]
        if isinstance(colon, Token) and colon.type == "COLON" and isinstance(name, Token) and name.type == "NAME":
            return colon
    return None


def _dashed_name(error: UnexpectedInput, shifted: list[Any], source: str) -> tuple[Token, str] | None:
    """``cortex-m4`` or ``hidden-1``: a name with a '-' in it; the name's first part and a message."""
    last = shifted[-1] if shifted else None
    if not isinstance(error, UnexpectedCharacters) or not isinstance(last, Token) or last.type != "NAME":
        return None
    position = error.pos_in_stream
    if position is None or source[position : position + 1] != "-" or last.end_pos != position:
        return None
    rest = re.match(r"[A-Za-z0-9_]*", source[position + 1 :])
    suggestion = f"{last}_{rest[0] if rest else ''}"
    return last, f"syntax error: a name cannot contain '-' (write '{suggestion}')"


def _context(source: str, line: int, column: int) -> str:
    """The source line and a caret under ``column`` (tabs kept so that the caret lines up)."""
    lines = source.splitlines()
    if not 1 <= line <= len(lines):
        return ""
    text = lines[line - 1]
    pad = "".join("\t" if c == "\t" else " " for c in text[: column - 1])
    return f"{text}\n{pad}^"


def _syntax_error(error: UnexpectedInput, source: str, path: str) -> NNError:
    parser = _parser()
    shifted = _shifted(error)
    misuse = _keyword_misuse(error, shifted) or _dashed_name(error, shifted, source)
    colon = _missing_type(error, shifted)
    if misuse is not None:
        token, message = misuse
        line, column = token.line or 1, token.column or 1
    elif colon is not None:
        message = f"syntax error: expected a type after ':', {_TYPE_EXAMPLE}"
        line, column = colon.line or 1, colon.column or 1
    else:
        expected: set[str] = set()
        if isinstance(error, UnexpectedToken | UnexpectedEOF):
            expected = set(error.expected)
        elif isinstance(error, UnexpectedCharacters):
            expected = set(error.allowed or ())
        line = getattr(error, "line", -1)
        column = getattr(error, "column", -1)
        found_token = getattr(error, "token", None)
        if isinstance(found_token, Token) and found_token.type == "$END" and found_token.end_line:
            # Lark places the end of the file on the last token; point just past it instead.
            line, column = found_token.end_line, found_token.end_column or column
        if line is None or line < 1:  # at the end of the file
            lines = source.splitlines() or [""]
            line, column = len(lines), len(lines[-1]) + 1
        found = _found(error, source)
        if isinstance(error, UnexpectedCharacters) and found == "'\"'":
            message = "syntax error: unterminated string (a string ends with '\"' on the same line)"
        elif expected:
            message = f"syntax error: expected {_describe_expected(parser, expected)}, found {found}"
        else:
            message = f"syntax error: unexpected {found}"
    context = _context(source, line, column)
    return NNError([Diagnostic(Severity.ERROR, message, Loc(path, line, column), context)])


def too_large(path: str) -> NNError:
    """The error for a model beyond MAX_SOURCE_CHARS (characters of text, or bytes of a file)."""
    return NNError.at(Loc.file(path), f"the model is over {MAX_SOURCE_CHARS // 1024} KiB; nndsl reads .nn files of "
                      f"at most {MAX_SOURCE_CHARS} characters")


def _too_deep(source: str, path: str) -> NNError | None:
    """Parentheses nested beyond MAX_NESTING, at the first one too deep (comments and strings do not count)."""
    code = _NOT_CODE.sub(lambda match: " " * len(match[0]), source)
    depth = 0
    for match in _PARENTHESES.finditer(code):
        depth += 1 if match[0] == "(" else -1
        if depth > MAX_NESTING:
            line = code.count("\n", 0, match.start()) + 1
            column = match.start() - (code.rfind("\n", 0, match.start()) + 1) + 1
            message = f"syntax error: parentheses nested more than {MAX_NESTING} deep"
            return NNError([Diagnostic(Severity.ERROR, message, Loc(path, line, column),
                                       _context(source, line, column))])
    return None


def parse(source: str, path: str = "<string>") -> ast.Program:
    """Parse `.nn` text (a leading UTF-8 byte order mark is ignored); ``path`` only labels locations."""
    source = source.removeprefix(_BOM)
    if len(source) > MAX_SOURCE_CHARS:
        raise too_large(path)
    deep = _too_deep(source, path)
    if deep is not None:
        raise deep
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
        if isinstance(error.orig_exc, NNError):  # show the line, as for the parser's own errors
            raise NNError(
                replace(d, context=_context(source, d.loc.line, d.loc.col)) if d.loc and not d.context else d
                for d in error.orig_exc.diagnostics
            ) from None
        raise
    assert isinstance(program, ast.Program)
    return program
