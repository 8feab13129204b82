"""Atomic file output: write a temporary file beside the target, then rename it.

A reader of the target sees the old file or the complete new one, never a part;
on any failure (Ctrl-C and a full disk included) the temporary file is removed
and the target is left as it was.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write(path, write) -> Path:
    """Call ``write(tmp_path)``, give the file the umask's permissions, rename it onto `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)  # mkstemp creates 0600: give the file the usual permissions
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_all(writes) -> list[Path]:
    """All or nothing for several files: ``writes`` is a list of (path, write); each
    ``write(tmp_path)`` fills a temporary file beside its target, and only once every one is
    complete are they renamed onto their targets. On any failure every temporary file is
    removed, and a target this call had already put in place that did not exist before is
    removed too: no set of outputs is left half-written."""
    staged: list[tuple[str, Path]] = []
    placed: list[Path] = []
    umask = os.umask(0)
    os.umask(umask)
    try:
        for path, write in writes:
            path = Path(path)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            staged.append((tmp, path))
            write(tmp)
            os.chmod(tmp, 0o666 & ~umask)
        existed = {path for _, path in staged if os.path.lexists(path)}
        for tmp, path in staged:
            os.replace(tmp, path)
            if path not in existed:
                placed.append(path)
    except BaseException:
        for tmp, _ in staged:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        for path in placed:
            path.unlink(missing_ok=True)
        raise
    return [path for _, path in staged]
