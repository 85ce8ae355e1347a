"""Write tests/fixtures_io/adam.k3.{keras,h5,npz}: a small model trained with Adam.

Saved trained models carry the optimizer's state next to the weights (Adam: two
slots per weight and counters), which the loaders' size caps must allow.  Needs
Keras 3 with the JAX backend (no TensorFlow)::

    KERAS_BACKEND=jax python scripts/make_trained_fixtures.py

The ``.npz`` holds an input ``x`` and Keras's output ``y`` for it.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures_io")


def main():
    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    inputs = keras.Input(shape=(6, 3), name="seq")
    h = keras.layers.LSTM(8, return_sequences=True, name="enc")(inputs)
    h = keras.layers.LSTM(5, name="dec")(h)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(h), name="adam_trained")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    xt = rng.standard_normal((32, 6, 3)).astype(np.float32)
    model.fit(xt, rng.standard_normal((32, 2)).astype(np.float32), epochs=2, batch_size=8, verbose=0)
    model.save(os.path.join(OUT, "adam.k3.keras"))
    model.save(os.path.join(OUT, "adam.k3.h5"))
    x = rng.standard_normal((3, 6, 3)).astype(np.float32)
    np.savez(os.path.join(OUT, "adam.k3.npz"), x=x, y=np.asarray(model.predict(x, verbose=0)),
             n_optimizer_vars=len(model.optimizer.variables))


if __name__ == "__main__":
    main()
