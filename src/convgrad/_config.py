"""The im2col workspace budget: how much scratch memory one call may use."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

DEFAULT_WORKSPACE_BYTES = 256 * 1024 * 1024
"""Default budget for the im2col / col2im workspace of one call: 256 MiB."""

_workspace_bytes = DEFAULT_WORKSPACE_BYTES


def get_workspace_budget() -> int:
    """Return the current workspace budget in bytes.

    Examples
    --------
    >>> import convgrad as cg
    >>> cg.get_workspace_budget() == 256 * 1024 * 1024
    True
    """
    return _workspace_bytes


def set_workspace_budget(nbytes: int) -> int:
    """Set the workspace budget in bytes and return the previous one.

    The convolution routines copy the windows of the padded input into a
    matrix (im2col) so that each contraction is one GEMM. The batch is
    processed in chunks so that this matrix, and the matrix of windows the
    input gradient folds back, stay under ``nbytes`` each. A single sample is
    never split, so one sample's windows are the floor of the workspace.

    Parameters
    ----------
    nbytes : int
        The budget, at least 1 byte.

    Returns
    -------
    int
        The budget that was in force before.

    Raises
    ------
    ValueError
        If ``nbytes`` is not a positive integer.

    Examples
    --------
    >>> import convgrad as cg
    >>> old = cg.set_workspace_budget(64 * 1024 * 1024)
    >>> cg.get_workspace_budget()
    67108864
    >>> _ = cg.set_workspace_budget(old)
    """
    global _workspace_bytes
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 1:
        raise ValueError(f"nbytes must be a positive integer number of bytes; got {nbytes!r}")
    previous = _workspace_bytes
    _workspace_bytes = nbytes
    return previous


@contextlib.contextmanager
def workspace_budget(nbytes: int) -> Iterator[None]:
    """Use a different workspace budget inside a ``with`` block.

    Examples
    --------
    >>> import numpy as np
    >>> import convgrad as cg
    >>> x, w = np.ones((4, 1, 5, 5)), np.ones((1, 1, 3, 3))
    >>> with cg.workspace_budget(1024):   # forces one sample per chunk
    ...     y = cg.conv(x, w)
    >>> float(y[0, 0, 0, 0])
    9.0
    """
    previous = set_workspace_budget(nbytes)
    try:
        yield
    finally:
        set_workspace_budget(previous)
