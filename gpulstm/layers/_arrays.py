"""Arrays across the API boundary: what users may hand in, and what they get back.

Keras takes bool, integer and float arrays (inputs, masks, states, weights) and
casts them to the dtype it needs; complex numbers, strings and Python objects
(``None``) it refuses.  NumPy would cast them with at most a ComplexWarning
(dropping the imaginary part), read the string "False" as True and ``None`` as
NaN, so these checks run before anything changes.

Weights go out read-only: the kernels pack copies of them (transposed, in
panels, on a device), so an in-place edit of a live array would reach some code
paths and not others.  ``get_weights()`` gives writable copies and
``set_weights`` stores copies of what it is given.
"""
import contextlib

import numpy as np

REAL_KINDS = "biuf"  # bool, signed and unsigned integers, floats


def check_real(arr, what, fix="Pass a bool, integer or float array"):
    """``arr`` itself when its dtype is bool, integer or float; else a ValueError."""
    dtype = getattr(arr, "dtype", None)
    if dtype is None or np.dtype(dtype).kind not in REAL_KINDS:
        raise ValueError(
            f"Expected {what} to hold real numbers (a bool, integer or float dtype). "
            f"Received: {what} with dtype={dtype}. {fix}.")
    return arr


def as_real_array(value, what, fix="Pass a bool, integer or float array"):
    """``np.asarray(value)`` checked by :func:`check_real` (ragged input refused too)."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        raise ValueError(f"Expected {what} to be an array of real numbers. Received: "
                         f"{what} of type {type(value).__name__} with ragged entries. "
                         f"{fix}.") from None
    return check_real(arr, what, fix)


WEIGHTS_FIX = "Pass the arrays of `get_weights()` (edited if you like), in the same order"


def weight_copy(arr, dtype):
    """A writable C-contiguous copy in ``dtype``: the layer owns what it stores."""
    return np.array(arr, dtype=dtype, order="C", copy=True)


def readonly(arr):
    """A read-only view of a live weight: an in-place edit raises instead of being
    used by some code paths and ignored by others (see this module's docstring)."""
    view = arr.view()
    view.flags.writeable = False
    return view


@contextlib.contextmanager
def restore_on_error(*objs):
    """Put back every attribute of ``objs`` if the block raises.

    For updates that assign new values (weights lists, states, built flags) or
    append to lists (a layer's graph nodes), not ones that edit arrays in place:
    the objects end exactly as they were.
    """
    saved = [(obj, dict(obj.__dict__),
              [(v, list(v)) for v in obj.__dict__.values() if type(v) is list])
             for obj in objs]
    try:
        yield
    except BaseException:
        for obj, attrs, lists in saved:
            obj.__dict__.clear()
            obj.__dict__.update(attrs)
            for v, items in lists:
                v[:] = items
        raise
