"""The array files of ``gpulstm predict``: read ``.npy`` / ``.npz`` inputs, write outputs safely.

The output rule: ``-o NAME`` is exactly the file written. One output is written as
``.npy`` content, several as an ``.npz`` archive (``arr_0``, ``arr_1``, ... in the
model's output order). A name ending ``.npz`` for one output, or ``.npy`` for
several, contradicts the content and is refused; any other name is kept as given.
The file is written to a temporary file in the same folder and renamed over the
destination, so a failed write never leaves a truncated file where a previous
one was.
"""
import os
import tempfile
import zipfile

import numpy as np


class ArrayFileError(ValueError):
    """An input or output file problem, reported as one line by the CLI."""


def check_destination(path):
    """Refuse ``path`` as an output file before any work is done.

    Raises :class:`ArrayFileError` when it is a folder, or its folder is missing or
    not writable.
    """
    path = os.fspath(path)
    if not path or path.endswith((os.sep, "/")) or os.path.isdir(path):
        raise ArrayFileError(f"Expected -o to name a file. Received: -o {path!r}, which is a "
                             f"folder; give a file name, e.g. -o {os.path.join(path, 'y.npy')!r}")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise ArrayFileError(f"Expected -o in an existing folder. Received: -o {path!r}, but "
                             f"{parent!r} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ArrayFileError(f"Expected -o in a writable folder. Received: -o {path!r}, but "
                             f"{parent!r} is not writable; choose another folder")


def check_name(path, n_outputs):
    """Refuse a name whose extension contradicts the content (``.npy`` vs ``.npz``)."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if n_outputs == 1 and ext == ".npz":
        raise ArrayFileError(f"The model has 1 output, written as .npy content. Received: -o "
                             f"{path!r}; name it with .npy (or another extension)")
    if n_outputs > 1 and ext == ".npy":
        raise ArrayFileError(f"The model has {n_outputs} outputs, written as one .npz archive "
                             f"(arr_0 ... arr_{n_outputs - 1}). Received: -o {path!r}; name it "
                             "with .npz")


def write_outputs(path, arrays):
    """Write one array as ``.npy`` or several as ``.npz`` to exactly ``path``, atomically.

    Parameters
    ----------
    path : str or os.PathLike
    arrays : list of numpy.ndarray

    Returns
    -------
    str
        The path written (``path`` itself: nothing is appended).
    """
    path = os.fspath(path)
    check_destination(path)
    check_name(path, len(arrays))
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            # A file object: NumPy writes to it as is and appends no extension.
            if len(arrays) == 1:
                np.save(fh, arrays[0], allow_pickle=False)
            else:
                np.savez(fh, *arrays)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would create it (mkstemp makes 0600)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise ArrayFileError(f"Could not write {path!r} ({exc.strerror or exc}); "
                                 "any previous file there is unchanged") from None
        raise
    return path


def read_inputs(path, input_names):
    """The model input from a ``.npy`` file, or from an ``.npz`` archive.

    An archive with one array is that input; with several, its keys must be the
    model's input names. Returns an array, or a dict by input name.
    """
    path = os.fspath(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ArrayFileError(f"Cannot read {path!r} as a .npy or .npz array ({exc})") from None
    if isinstance(data, np.ndarray):
        return data
    with data:
        keys = list(data.files)
        if len(keys) != 1 and sorted(keys) != sorted(input_names):
            raise ArrayFileError(
                f"Expected an .npz input with one array, or one array per model input named "
                f"{list(input_names)}. Received: {path!r} with arrays {keys}; rename its arrays "
                "(np.savez(path, **{name: array}))")
        try:
            arrays = {k: data[k] for k in keys}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise ArrayFileError(f"Cannot read {path!r} as a .npz archive ({exc})") from None
    return arrays[keys[0]] if len(keys) == 1 else arrays
