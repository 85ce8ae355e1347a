"""Write the files the README's commands use into the current folder.

    python examples/make_readme_files.py      # model.keras, ocr.keras, x.npy, sequences.zarr

``model.keras`` is the seed notebook's functional model (Input (400, 3) -> LSTM(50,
relu) -> Dense(1)), saved by Keras 3 and committed next to this script
(``examples/model.keras``, 63 KB); ``x.npy`` holds 32 random sequences for it, and
``sequences.zarr`` (written only when zarr is installed) the same for the Dask
example. ``ocr.keras`` is the custom-layer example's OCR model (image and label inputs ->
Bidirectional(LSTM) -> Dense softmax -> a ``CTCLayer`` endpoint), saved by Keras 3 with
``scripts/make_custom_fixtures.py`` (the same file as ``tests/fixtures_custom/k3_ctc.keras``).
No TensorFlow or Keras is needed.

``python examples/make_readme_files.py --keras`` rebuilds ``examples/model.keras``
with Keras 3 (``KERAS_BACKEND=jax`` is enough); nothing else needs Keras.
"""
import os
import shutil
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "model.keras")
SHAPE = (400, 3)


def write_model_with_keras(path=MODEL):
    """Save the seed notebook's model, with seeded random weights, using Keras 3."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    inputs = keras.Input(shape=SHAPE, name="series")
    hidden = keras.layers.LSTM(50, activation="relu", name="lstm")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(hidden), name="seed")
    rng = np.random.default_rng(7)
    model.set_weights([rng.uniform(-0.3, 0.3, w.shape).astype(w.dtype)
                       for w in model.get_weights()])
    model.save(path)
    return path


def write_inputs(folder="."):
    """Copy ``model.keras`` and ``ocr.keras``, write ``x.npy`` (and ``sequences.zarr``) into
    ``folder``."""
    shutil.copyfile(MODEL, os.path.join(folder, "model.keras"))
    shutil.copyfile(os.path.join(HERE, "ocr.keras"), os.path.join(folder, "ocr.keras"))
    x = np.random.default_rng(0).normal(size=(32,) + SHAPE).astype("float32")
    np.save(os.path.join(folder, "x.npy"), x)
    written = ["model.keras", "ocr.keras", "x.npy"]
    try:
        import zarr
    except ImportError:
        return written
    target = os.path.join(folder, "sequences.zarr")
    shutil.rmtree(target, ignore_errors=True)
    z = zarr.open_array(target, mode="w", shape=x.shape, chunks=(8,) + SHAPE, dtype=x.dtype)
    z[:] = x
    return written + ["sequences.zarr"]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "--keras" in argv:
        print("wrote", write_model_with_keras())
        return 0
    print("wrote", ", ".join(write_inputs()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
