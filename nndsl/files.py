"""Writing outputs so that a failure never leaves a half-written or lost file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path


def write_files(files: Mapping[Path, str | bytes]) -> None:
    """Write every file under a temporary name first, then rename them all into place."""
    umask = os.umask(0)
    os.umask(umask)
    temporaries: list[tuple[str, Path]] = []
    try:
        for path, text in files.items():
            try:
                handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            except OSError as error:  # name the file the user asked for, not the temporary one
                raise OSError(error.errno, error.strerror, str(path)) from None
            temporaries.append((temporary, path))
            os.fchmod(handle, 0o666 & ~umask)  # as an ordinary new file, not mkstemp's 0600
            with os.fdopen(handle, "wb") as stream:
                stream.write(text.encode("utf-8") if isinstance(text, str) else text)
        for temporary, path in temporaries:
            os.replace(temporary, path)
    finally:
        for temporary, _ in temporaries:
            if os.path.exists(temporary):
                os.unlink(temporary)
