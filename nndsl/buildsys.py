"""What build systems need from nndsl: the depfile's text and the folders of the CMake module and Make snippet.

A build regenerates a model's C when the ``.nn``, its weights or nndsl itself
change. The depfile lists the first two and a file whose path names the
installed nndsl version (its ``dist-info/METADATA``); upgrading nndsl removes
that file, and an empty rule for it (as ``gcc -MP`` writes) makes make, Ninja
and CMake regenerate instead of failing on a missing prerequisite.
"""

from __future__ import annotations

import argparse
import importlib.metadata
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import nndsl

# The folders inside the package: the CMake module (nndslConfig.cmake) and the Make snippet (nndsl.mk).
SHARE_FOLDERS = {"cmake": "cmake", "make": "make"}


def make_escape(path: Path) -> str:
    """A path as make reads it in a rule: spaces, '#' and ':' escaped, '$' doubled."""
    text = str(path).replace("$", "$$")
    for special in " #:":
        text = text.replace(special, "\\" + special)
    return text


def version_file() -> Path:
    """A file of this nndsl installation whose path names its version, else the package's ``__init__.py``."""
    try:
        files = importlib.metadata.distribution("nndsl").files or []
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        files = []
    wanted = f"nndsl-{nndsl.__version__}.dist-info"
    for file in files:
        if file.name == "METADATA" and file.parent.name == wanted:
            path = Path(str(file.locate()))
            if path.is_file():
                return path.resolve()
    return Path(nndsl.__file__).resolve()  # an editable or source install: the file holding __version__


def depfile_text(targets: Iterable[Path], dependencies: Iterable[Path]) -> str:
    """A make depfile: the targets depend on the model's files and on this nndsl; an empty rule for the latter."""
    nndsl_file = make_escape(version_file())
    deps = " ".join([*(make_escape(p) for p in dependencies), nndsl_file])
    return f"{' '.join(make_escape(p) for p in targets)}: {deps}\n\n{nndsl_file}:\n"


def share_dir(kind: str) -> Path:
    """The installed folder holding the ``cmake`` module or the ``make`` snippet."""
    return Path(str(resources.files("nndsl.share").joinpath(SHARE_FOLDERS[kind])))


class PrintShareDir(argparse.Action):
    """``nndsl --cmake-dir`` / ``--make-dir``: print the folder and stop, as ``--version`` does."""

    def __init__(self, option_strings: list[str], dest: str, kind: str = "cmake", help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)
        self.kind = kind

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        print(share_dir(self.kind))
        parser.exit()
