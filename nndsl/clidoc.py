"""The command-line reference (docs/cli.md), generated from the argument parser itself.

``python -m nndsl.clidoc > docs/cli.md`` writes it; a test keeps the file in
step with the parser, so the reference cannot describe options that are gone.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager

from nndsl.cli import build_parser

WIDTH = "100"  # the help text's line width, fixed so the output does not depend on the terminal

HEADER = """# Command-line reference

Generated from nndsl's argument parser by `python -m nndsl.clidoc > docs/cli.md`
(`tests/test_docs.py` fails when this file and the parser disagree). Every
command exits with 0 on success and 1 on an error in the model or its inputs,
printed as `file:line:col: error: ...` or `path: error: ...`.
"""


@contextmanager
def _columns(width: str) -> Iterator[None]:
    """argparse wraps help to $COLUMNS: fixed here for a reproducible text."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = width
    try:
        yield
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse offers no public way to list subparsers
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def reference() -> str:
    """The Markdown text of docs/cli.md."""
    with _columns(WIDTH):
        parser = build_parser()
        parts = [HEADER, "## nndsl\n", f"```text\n{parser.format_help().rstrip()}\n```\n"]
        for name, command in _subcommands(parser).items():
            parts += [f"## nndsl {name}\n", f"```text\n{command.format_help().rstrip()}\n```\n"]
    return "\n".join(parts)


if __name__ == "__main__":
    print(reference(), end="")
