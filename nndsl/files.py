"""Writing outputs so that a failure never leaves a half-written or lost file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path


def _unchanged(path: Path, content: bytes) -> bool:
    """Whether ``path`` already holds exactly ``content`` (then it is left alone, mtime and all)."""
    try:
        return path.is_file() and path.stat().st_size == len(content) and path.read_bytes() == content
    except OSError:
        return False


def write_files(files: Mapping[Path, str | bytes]) -> list[Path]:
    """Write every file under a temporary name first, then rename them all into place.

    Missing folders are created, as a compiler creates its output folder. A file
    whose content would not change is not rewritten, so a build system that
    compares timestamps does not rebuild what depends on it. Returns the paths
    actually written.
    """
    umask = os.umask(0)
    os.umask(umask)
    temporaries: list[tuple[str, Path]] = []
    try:
        for path, text in files.items():
            content = text.encode("utf-8") if isinstance(text, str) else text
            if _unchanged(path, content):
                continue
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            except OSError as error:  # name the file the user asked for, not the temporary one
                raise OSError(error.errno, error.strerror, str(path)) from None
            temporaries.append((temporary, path))
            os.fchmod(handle, 0o666 & ~umask)  # as an ordinary new file, not mkstemp's 0600
            with os.fdopen(handle, "wb") as stream:
                stream.write(content)
        for temporary, path in temporaries:
            os.replace(temporary, path)
        return [path for _, path in temporaries]
    finally:
        for temporary, _ in temporaries:
            if os.path.exists(temporary):
                os.unlink(temporary)
