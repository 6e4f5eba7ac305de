"""Writing outputs so that a failure never leaves a half-written, lost or mixed set of files.

Every file is first written under a temporary name beside its final one, then all are renamed into place;
if one rename fails, the files already replaced get their previous content back (and new ones are removed),
so a build either replaces its whole set of outputs or none of them. Only the named files (and their
folders) are created: a symbolic link in the output folder is replaced, never written through.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from nndsl.resolve import absolute_path


def _unchanged(path: Path, content: bytes) -> bool:
    """Whether ``path`` already holds exactly ``content`` (then it is left alone, mtime and all)."""
    try:
        return path.is_file() and path.stat().st_size == len(content) and path.read_bytes() == content
    except OSError:
        return False


def _nearest_existing(folder: Path) -> Path:
    """The first of ``folder`` and its ancestors that exists (as anything)."""
    for candidate in (folder, *folder.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(".")


def _check_target(path: Path) -> None:
    """A clear error, before anything is written, for an output that cannot be a file in a folder."""
    existing = _nearest_existing(path.parent)
    if not existing.is_dir():
        where = "" if existing == path.parent else f" (the outputs go into {path.parent})"
        raise NotADirectoryError(errno.ENOTDIR, f"is a file, not a folder to write into{where}", str(existing))
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a folder; nndsl would replace it with a file", str(path))


def _write_temporary(path: Path, content: bytes, umask: int) -> str:
    """``content`` in a new file beside ``path``, with an ordinary new file's permissions (not mkstemp's 0600)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as error:  # name the folder the user asked for, not the temporary file
        reason = f"cannot write into this folder ({error.strerror or error})"
        raise OSError(error.errno, reason, str(path.parent)) from None
    try:
        os.fchmod(handle, 0o666 & ~umask)
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
    except BaseException:
        os.unlink(temporary)
        raise
    return temporary


def _backup(path: Path) -> str | None:
    """A second name for the current ``path`` (None when there is none), to put it back after a failure.

    A hard link costs no copy and leaves ``path`` in place; a file system without links gets a copy.
    """
    if not os.path.lexists(path):
        return None
    while True:
        backup = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.old")
        try:
            os.link(path, backup, follow_symlinks=False)
            return backup
        except FileExistsError:
            continue
        except OSError:
            shutil.copy2(path, backup, follow_symlinks=False)
            return backup


def _replace_all(temporaries: list[tuple[str, Path]]) -> None:
    """Rename every temporary file into place; after a failure, every path is as it was before."""
    done: list[tuple[Path, str | None]] = []
    try:
        for temporary, path in temporaries:
            backup = _backup(path)
            done.append((path, backup))
            try:
                os.replace(temporary, path)
            except OSError as error:
                raise OSError(error.errno, f"cannot be replaced ({error.strerror or error})", str(path)) from None
    except BaseException:
        _roll_back(done)
        raise
    finally:
        for _, backup in done:
            if backup is not None and os.path.lexists(backup):
                os.unlink(backup)


def _roll_back(done: list[tuple[Path, str | None]]) -> None:
    """Put back what was at each path (its backup), or remove what was not there."""
    for path, backup in reversed(done):
        try:
            if backup is not None:
                os.replace(backup, path)
            elif os.path.lexists(path):
                os.unlink(path)
        except OSError:  # the original error matters more; a backup left behind keeps the old file
            pass


def _refuse_replacing(outputs: Iterable[Path], keep: Iterable[Path]) -> None:
    """An output that is one of the files it was made from (``import m.tflite -o m.tflite``) would destroy it."""
    kept = {absolute_path(path) for path in keep}
    for path in outputs:
        if absolute_path(path) in kept:
            raise FileExistsError(errno.EEXIST, "this output would replace the file it is made from; choose "
                                  "another output name", str(path))


def write_files(files: Mapping[Path, str | bytes], keep: Iterable[Path] = ()) -> list[Path]:
    """Write every file under a temporary name first, then rename them all into place (or none of them).

    Missing folders are created, as a compiler creates its output folder. A file
    whose content would not change is not rewritten, so a build system that
    compares timestamps does not rebuild what depends on it. Returns the paths
    actually written. No output may be one of the ``keep`` files (the inputs). Errors are ``OSError``
    naming the output path or folder.
    """
    _refuse_replacing(files, keep)
    umask = os.umask(0)
    os.umask(umask)
    pending = {path: text.encode("utf-8") if isinstance(text, str) else text for path, text in files.items()}
    pending = {path: content for path, content in pending.items() if not _unchanged(path, content)}
    for path in pending:
        _check_target(path)
    temporaries: list[tuple[str, Path]] = []
    try:
        for path, content in pending.items():
            temporaries.append((_write_temporary(path, content, umask), path))
        _replace_all(temporaries)
        return [path for _, path in temporaries]
    finally:
        for temporary, _ in temporaries:
            if os.path.exists(temporary):
                os.unlink(temporary)
