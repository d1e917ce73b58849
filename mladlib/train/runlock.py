"""One run at a time in a run folder: an advisory lock, and the cleanup a lock makes safe.

The lock is ``fcntl.flock`` on ``<run folder>/.lock``: the operating system releases it
when the process ends, however it ends (even SIGKILL), so a stale lock file left by a
dead process never blocks the next run. The lock file is opened without following a
symbolic link and is never written to. Holding the lock, a run may delete the
temporary files a killed checkpoint write left behind (no other run can be writing them).
"""

from __future__ import annotations

import contextlib
import glob
import os
import stat
from pathlib import Path

from ..utils import is_atomic_temporary

LOCK_NAME = ".lock"


class RunFolderLock:
    """An exclusive, non-blocking lock on a run folder (created if missing).

    ``ValueError`` naming the folder when another live process holds it.
    :meth:`release` unlocks; the lock file stays (deleting it could let two processes
    lock two different files of the same name).
    """

    def __init__(self, run_dir: str | os.PathLike) -> None:
        import fcntl

        self.run_dir = Path(run_dir)
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise ValueError(f"run folder {self.run_dir} is a file, not a folder; "
                             "choose another run folder")
        self.created = not self.run_dir.exists()
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ValueError(f"cannot create the run folder {self.run_dir}: a part of "
                             "its path is a file, not a folder") from None
        self.path = self.run_dir / LOCK_NAME
        # O_NOFOLLOW: a .lock planted as a link must not make us create or open a file
        # elsewhere; the lock file is never truncated or written (it may be anyone's)
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            self._fd: int | None = os.open(self.path, flags, 0o644)
        except OSError as error:
            reason = ("is a symbolic link" if self.path.is_symlink()
                      else f"cannot be opened ({error.strerror})")
            raise ValueError(f"run folder {self.run_dir}: its lock file {self.path} "
                             f"{reason}; refusing to use the folder (remove that file "
                             "or choose another run folder)") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise ValueError(f"run folder {self.run_dir} is in use by another run (it holds the lock "
                             f"{self.path}); wait for that run to end or choose another run folder") from None

    def release(self, remove_if_created: bool = False) -> None:
        """Unlock; with ``remove_if_created``, also delete the folder if this lock created it
        and nothing else was written into it (a run that failed during setup)."""
        if self._fd is None:
            return
        os.close(self._fd)  # closing the descriptor releases the flock
        self._fd = None
        if remove_if_created and self.created:
            with contextlib.suppress(OSError):
                self.path.unlink()
                self.run_dir.rmdir()  # only if empty

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.release()


def remove_stale_temporaries(run_dir: str | os.PathLike, names: list[str]) -> list[Path]:
    """Delete the temporaries that :func:`mladlib.utils.atomic_path` makes for the files
    ``names`` in ``run_dir`` (exactly ``.<name>.<8 random characters><the name's
    suffix>``: the run folder writes each file with its own suffix), left behind by a
    killed write; the paths removed. A user's ``.<name>.bak`` stays.

    Call it only while holding the folder's :class:`RunFolderLock`.
    """
    removed = []
    for name in names:
        for stale in Path(run_dir).glob(f".{glob.escape(name)}.*"):
            # a link or folder of that name is no temporary of ours: leave it alone
            ours = is_atomic_temporary(stale.name, name, Path(name).suffix)
            if ours and stat.S_ISREG(stale.lstat().st_mode):
                with contextlib.suppress(FileNotFoundError):
                    stale.unlink()
                    removed.append(stale)
    return removed
