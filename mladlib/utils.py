"""Small shared helpers: seeding, atomic file writes, array conversion."""

from __future__ import annotations

import contextlib
import os
import random
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = True, num_threads: int | None = None) -> None:
    """Seed Python, NumPy and torch; optionally force deterministic kernels.

    The same command then gives the same numbers on the same machine. ``num_threads``
    fixes torch's intra-op thread count (a different count changes reduction order).
    Process-wide: :func:`preserved_global_state` undoes it (the trainer does, after a run).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    if deterministic:
        # warn_only: a few CUDA kernels (e.g. index_add backward) have no deterministic
        # version; on CPU every kernel we use is deterministic.
        torch.use_deterministic_algorithms(True, warn_only=True)
        # Deterministic mode also NaN-fills every new uninitialized tensor; every buffer we
        # allocate is written before it is read, so that pass is pure cost (10% of a step).
        torch.utils.deterministic.fill_uninitialized_memory = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def capture_global_state() -> dict:
    """The process-wide settings that :func:`seed_everything` and a training run change:
    deterministic mode, the NaN-fill of new tensors, torch's thread count,
    ``CUBLAS_WORKSPACE_CONFIG``, and the Python, NumPy and torch random streams (CUDA's
    only where CUDA is already initialised: capturing must not initialise it)."""
    state = {
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "fill_uninitialized_memory": torch.utils.deterministic.fill_uninitialized_memory,
        "num_threads": torch.get_num_threads(),
        "cublas_workspace": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "python_rng": random.getstate(),
        "numpy_rng": np.random.get_state(),
        "torch_rng": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    return state


def restore_global_state(state: dict) -> None:
    """Put back what :func:`capture_global_state` recorded."""
    torch.use_deterministic_algorithms(state["deterministic"], warn_only=state["warn_only"])
    torch.utils.deterministic.fill_uninitialized_memory = state["fill_uninitialized_memory"]
    if torch.get_num_threads() != state["num_threads"]:
        torch.set_num_threads(state["num_threads"])
    if state["cublas_workspace"] is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = state["cublas_workspace"]
    random.setstate(state["python_rng"])
    np.random.set_state(state["numpy_rng"])
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state:
        torch.cuda.set_rng_state_all(state["cuda_rng"])


@contextlib.contextmanager
def preserved_global_state() -> Iterator[None]:
    """Run the block, then restore the settings of :func:`capture_global_state`, also on errors."""
    state = capture_global_state()
    try:
        yield
    finally:
        restore_global_state(state)


def default_mode(directory: bool = False) -> int:
    """The permission bits a newly created file (or directory) gets under the process's umask.

    ``tempfile`` makes its files and folders private (0600/0700); what is renamed into
    place gets this mode instead, as if created there directly.
    """
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary is ``.<name>.<8 random characters><suffix or .tmp>``
    (:func:`is_atomic_temporary` recognises exactly those names).

    Readers never see a half-written file, and a failure leaves no temporary behind. An
    ``OSError`` while writing (disk full, file size limit, no permission) becomes a
    :class:`mladlib.validate.WriteError` naming ``path``, not the hidden temporary.
    """
    from .validate import WriteError

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    except OSError as error:
        raise WriteError(f"cannot write {path}: {error.strerror or error}") from error
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, default_mode())
        os.replace(tmp_path, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(error, OSError) and not isinstance(error, WriteError):
            raise WriteError(f"cannot write {path}: {error.strerror or error}") from error
        raise


#: the random part of a :func:`tempfile.mkstemp` name: 8 of ``a-z0-9_``
_TEMP_RANDOM = re.compile(r"[a-z0-9_]{8}")


def is_atomic_temporary(candidate: str, name: str, suffix: str = "") -> bool:
    """Whether the file name ``candidate`` is one that :func:`atomic_path` makes for a
    file ``name`` written with ``suffix``: ``.<name>.<8 random characters><suffix or
    .tmp>``."""
    prefix, suffix = f".{name}.", suffix or ".tmp"
    if not (candidate.startswith(prefix) and candidate.endswith(suffix)):
        return False
    middle = candidate[len(prefix):len(candidate) - len(suffix)]
    return _TEMP_RANDOM.fullmatch(middle) is not None


def check_torch_archive(path: str | os.PathLike, what: str = "checkpoint") -> None:
    """``ValueError`` naming ``path`` unless it is a zip archive as ``torch.save``
    writes them: every member stored uncompressed, and all of them together no larger
    than the file itself. Call it before ``torch.load``, which would inflate a
    compressed member in full first: a 1.5 MB archive of zeros can claim gigabytes (a
    zip bomb).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        raise ValueError(f"{what} {path} is corrupted or not a PyTorch checkpoint (not "
                         "a readable zip archive)") from None
    total = 0
    for member in members:
        if member.compress_type != zipfile.ZIP_STORED:
            raise ValueError(f"{what} {path}: its member {member.filename!r} is "
                             "compressed, which torch.save never does; refusing to "
                             "inflate it (the file was altered, or made to exhaust "
                             "memory)")
        total += member.file_size
    if total > size:
        raise ValueError(f"{what} {path}: its members claim {total} bytes, more than "
                         f"the file's {size}; refusing to read it (damaged or crafted)")


def to_numpy(array) -> np.ndarray:
    """Return ``array`` (numpy array, torch tensor or nested list) as a NumPy array."""
    if isinstance(array, torch.Tensor):
        return array.detach().to("cpu", torch.float64 if array.is_floating_point() else array.dtype).numpy()
    return np.asarray(array)


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_name() -> str:
    """The processor's model name (from ``/proc/cpuinfo`` on Linux), for benchmark records."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


#: glibc's largest allowed mmap threshold on 64-bit systems (``DEFAULT_MMAP_THRESHOLD_MAX``).
_MMAP_THRESHOLD_MAX = 32 * 2**20
_allocator_tuned: bool | None = None


def keep_freed_memory() -> bool:
    """Ask glibc's ``malloc`` to keep freed activation buffers for reuse; True if it took.

    Why: a CPU training step allocates and frees tens of tensors of 10-30 MB. glibc serves
    each from a fresh ``mmap`` (above its adaptive threshold) or returns the top of its heap
    to the system after a free, so every step faults its pages in again (zero-filled by
    the kernel): about 10% of an MLAD step at the MultiTHUMOS size on 2 cores
    (``benchmarks/README.md``). Raising the mmap threshold to glibc's maximum (32 MiB) and
    never trimming the heap keeps those pages mapped; the price is that the process's
    resident memory stays at its peak. PyTorch's CPU tuning guide makes the same point
    with jemalloc/tcmalloc. Process-wide and irreversible, so nothing in mladlib calls it
    on its own: call it yourself, or pass ``--keep-freed-memory`` to ``python -m mladlib
    train`` or the benchmarks. A no-op (False) where ``malloc`` is not glibc's. Idempotent.
    """
    global _allocator_tuned
    if _allocator_tuned is None:
        _allocator_tuned = False
        try:
            import ctypes
            import ctypes.util

            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
            mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
            M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
            # mallopt returns 1 on success; INT_MAX as trim threshold = "never trim"
            _allocator_tuned = bool(mallopt(M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(
                mallopt(M_TRIM_THRESHOLD, 2**31 - 1)
            )
        except (OSError, AttributeError):
            pass
    return _allocator_tuned


def freed_memory_kept() -> bool:
    """Whether :func:`keep_freed_memory` has tuned this process's ``malloc``."""
    return bool(_allocator_tuned)
