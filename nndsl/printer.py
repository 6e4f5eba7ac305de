"""An AST back to `.nn` text: what the Python builder writes, and what parses back to the same tree.

The printer is the parser's inverse up to layout and comments: for any
program ``p``, ``parse(format_program(p))`` equals ``p`` once locations are
set aside (:func:`nndsl.ast.without_locations`); tests check that on every
example.
"""

from __future__ import annotations

import re

from nndsl import ast

INDENT = "    "
_BARE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def format_program(program: ast.Program) -> str:
    """The program as `.nn` text: its statements in order, a blank line after the header statements."""
    lines = [f"network {program.name}", ""]
    previous: ast.Statement | None = None
    for statement in program.statements:
        if isinstance(previous, ast.TargetDecl | ast.WeightsDecl):
            lines.append("")
        lines.append(format_statement(statement))
        previous = statement
    return "\n".join(lines) + "\n"


def format_statement(statement: ast.Statement) -> str:
    match statement:
        case ast.TargetDecl():
            return format_target(statement)
        case ast.WeightsDecl():
            return f'weights "{statement.path}"'
        case ast.InputDecl():
            return f"input {statement.name} : {format_type(statement.type)}"
        case ast.LayerDecl():
            keyword = "output " if statement.is_output else ""
            annotation = "" if statement.type is None else f" : {format_type(statement.type)}"
            return f"{keyword}{statement.name} = {format_call(statement.call)}{annotation}"
        case ast.OutputDecl():
            return f"output {statement.name}"
    raise AssertionError(f"unprinted statement {statement!r}")


def format_target(target: ast.TargetDecl) -> str:
    if not target.fields:
        return f"target {target.name}"
    fields = [f"{INDENT}{field.name} {field.relation} {format_field_value(field)}" for field in target.fields]
    return "\n".join([f"target {target.name} {{", *fields, "}"])


def format_field_value(field: ast.TargetField) -> str:
    if field.word is not None:
        return field.word
    quantity = field.quantity  # always a float: ``10 ms`` reads back as 10.0
    number = str(int(quantity.value)) if quantity.value.is_integer() else repr(quantity.value)
    return number if quantity.unit is None else f"{number} {quantity.unit}"


def format_call(call: ast.Call) -> str:
    arguments = [arg.name if isinstance(arg, ast.Ref) else format_number(arg.value) for arg in call.args]
    arguments += [f"{kw.name}={format_value(kw.value)}" for kw in call.kwargs]
    activations = "".join(f" -> {activation.name}" for activation in call.activations)
    return f"{call.op}({', '.join(arguments)}){activations}"


def format_value(value: ast.Value) -> str:
    """An attribute's value: a number, a name (a string that is not one quoted) or a tuple of values."""
    if isinstance(value, tuple):
        inner = ", ".join(format_value(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, str):
        return value if _BARE_NAME.fullmatch(value) else f'"{value}"'
    return format_number(value)


def format_number(value: float | int) -> str:
    """Digits that read back as the same value and type: ``2`` an int, ``2.0`` a float."""
    return str(value) if isinstance(value, int) else repr(float(value))


def format_type(expr: ast.TypeExpr) -> str:
    shape = "" if expr.shape is None else "[" + ", ".join(str(d) for d in expr.shape) + "]"
    quant = "" if expr.quant is None else (f" @ scale({format_number(expr.quant.scale)}) "
                                           f"zero({expr.quant.zero_point})")
    return f"{expr.dtype}{shape}{quant}"
