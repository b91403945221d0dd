"""Writing a file so that readers see the old file or the new one, never part of one.

``replacing(path)`` opens a temporary file beside ``path`` (same directory, so the rename stays on one file
system). When the ``with`` block ends normally the file is flushed, fsynced, given ``path``'s permissions
(or 0o644 for a new file) and renamed over ``path`` with ``os.replace``, then the directory is fsynced
(best effort) so that the rename itself survives a crash. When the block raises, the temporary file is
removed and ``path`` is left as it was. Used by ``fastrnn.io`` (models and state dicts) and by the
benchmark suite's reports.
"""
from __future__ import annotations

import contextlib
import os
import tempfile


@contextlib.contextmanager
def replacing(path, mode="wb", encoding=None):
    """Yield a file object, opened with ``mode`` ("wb" or "w"), whose contents replace ``path`` atomically
    when the block completes."""
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode, encoding=encoding if mode == "w" else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644)
        except OSError:  # pragma: no cover - exotic file systems
            pass
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable; best effort (not every platform can open a directory)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover
        pass
