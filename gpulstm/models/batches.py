"""``predict`` for every model: Keras's argument checks, the batches (a stateful
model's own batch size), the progress bar, and one copy of the data to the
backend's device and one back."""
import warnings

from gpulstm import _xp
from gpulstm.layers._lstm_checks import positive_int
from gpulstm.models import _blas, atomic


def predict(model, x, batch_size, verbose, steps, backend):
    """``model.predict(x, ...)`` (see :meth:`gpulstm.Model.predict`)."""
    bs = predict_args(batch_size, steps, verbose)
    xs = model._standardize(x)
    n = xs[0].shape[0]
    sb = atomic.stateful_batch(model) if model.stateful else None
    bs = bs if sb is None else sb
    if steps is not None:
        n = min(n, steps * bs)
        xs = [a[:n] for a in xs]
    if sb is not None and n % sb:
        raise ValueError(
            f"Model '{model.name}' is stateful and was built for batch size {sb}: "
            f"the number of samples must be a multiple of {sb}. Received: {n} "
            "samples. Feed whole batches, or rebuild the model with "
            "`Input(batch_shape=(N, ...))` for your batch size N.")
    if model.stateful and sb is None and n > bs and n % bs:
        # the states take the first batch's size: the last batch could not use them
        raise ValueError(
            f"Model '{model.name}' is stateful and its states take the size of its "
            f"first batch ({bs}), which must then divide the number of samples. "
            f"Received: {n} samples with batch_size={bs}. Pass a `batch_size` that "
            "divides the number of samples, or build the model with "
            "`Input(batch_shape=(N, ...))`.")
    name = model._resolve(backend, xs[0])
    dev = _xp.backend_module(name)
    bar = _progress(len(range(0, max(n, 1), bs)), verbose)
    # One copy of the input to the device and one of each output back (per
    # _xp.DEVICE_BYTES); the batches in between stay on the device.
    gather = _xp.Gather(len(model.outputs), dev, n)
    try:
        # NumPy's BLAS threads would spin against the numba kernels' (models/_blas.py)
        with atomic.states_kept_on_error(model), _blas.one_thread(name == "cpu"):
            for _, block in _xp.windows(xs, n, bs, dev):
                for s in range(0, max(block[0].shape[0], 1), bs):
                    gather.add(model._run([a[s:s + bs] for a in block], False, name))
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    outs = gather.result()
    return outs[0] if len(outs) == 1 else outs


_warned_no_tqdm = []


def _progress(total, verbose):
    """A tqdm bar that stays on screen when done (as Keras's does), or None."""
    if verbose == 0 or total <= 1 and verbose == "auto":
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if verbose != "auto" and not _warned_no_tqdm:
            _warned_no_tqdm.append(True)
            warnings.warn("predict(verbose=1) shows a progress bar with tqdm, which is not "
                          "installed: `pip install tqdm` (a gpulstm dependency) to see it.",
                          stacklevel=4)  # the caller of Model.predict
        return None
    delay = 1.0 if verbose == "auto" else 0.0
    return tqdm(total=total, unit="batch", desc="predict", delay=delay, leave=True)


def predict_args(batch_size, steps, verbose):
    """The batch size ``predict`` runs with, after checking its arguments as Keras does."""
    bs = 32 if batch_size is None else positive_int(batch_size, "batch_size")
    if steps is not None:
        positive_int(steps, "steps")
    if not (verbose == "auto" if isinstance(verbose, str) else verbose in (0, 1, 2)):
        raise ValueError(f'Expected `verbose` to be "auto", 0, 1 or 2. Received: '
                         f"verbose={verbose!r}")
    return bs
