"""Write the custom-layer fixtures under tests/fixtures_custom (issue 17).

    KERAS_BACKEND=jax python scripts/make_custom_fixtures.py --out tests/fixtures_custom
    /work/tfvenv/bin/python scripts/make_custom_fixtures.py --out tests/fixtures_custom  # tf_keras

The same custom layers are written for Keras 3 (``k3_*``) and tf_keras 2 (``tfk_*``):

* ``*_gain.keras`` / ``*_gain.h5``: Input(5, 3) -> LSTM(4, return_sequences) ->
  ``ChannelGain`` (a non-trainable ``offset`` added before a trainable ``gain``, so
  Keras stores ``gain`` first) -> LSTM(3) -> ``ScaledDense(2, scale=0.5)`` (kernel, bias);
  ``*_gain.npz`` holds ``x``, ``y = model.predict(x)`` and ``w_gain_*`` (the
  ChannelGain layer's ``get_weights()``). Keras 3 registers neither class
  (its config's ``registered_name`` is the class name, ``module`` this script's).
* ``*_ctc.keras`` / ``*_ctc.h5``: the OCR examples' endpoint: inputs ``image`` (6, 3) and
  ``label`` (4,) -> Bidirectional(LSTM(3, return_sequences)) -> Dense(5, softmax) ->
  ``CTCLayer(name="ctc_loss")(label, y_pred)``, which adds a training loss and returns
  ``y_pred``; Keras 3 registers it as ``ocr>CTCLayer``. ``*_ctc.npz``: ``image``, ``label``, ``y``.
* ``*_cells.keras`` / ``*_cells.h5``: custom RNN cells: ``RNN(MinimalRNNCell(4),
  return_sequences)`` on ``x`` (6, 3) -> Dense(2), and ``RNN([MemoryCell(4, 3), LSTMCell(2)],
  go_backwards, return_state)`` on a masked ``Embedding(9, 3)`` of ``ids`` (padding at
  the end, the start and a hole) -> concatenate(output, states) -> Dense(3);
  ``*_cells.npz``: ``x``, ``ids``, ``ya``, ``yb``.
* ``k3_deconv.keras`` / ``.h5``: a Conv2DTranspose model (a layer with weights that gpulstm
  does not support).

Tests read everything with NumPy / h5py only (``allow_pickle=False``).
"""
import argparse
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
TF = "tf_keras" in sys.executable or "tfvenv" in sys.executable
if TF:
    import tf_keras as keras  # noqa: E402
    import tensorflow as tf  # noqa: E402

    ops = None
else:
    import keras  # noqa: E402
    from keras import ops  # noqa: E402
import numpy as np  # noqa: E402


def _mean(x):
    return tf.reduce_mean(x) if TF else ops.mean(x)


def _matmul(a, b):
    return tf.matmul(a, b) if TF else ops.matmul(a, b)


def _tanh(x):
    return tf.tanh(x) if TF else ops.tanh(x)


class ChannelGain(keras.layers.Layer):
    """``(x + offset) * gain`` per channel; offset is frozen and added first."""

    def __init__(self, init_gain=1.0, **kwargs):
        super().__init__(**kwargs)
        self.init_gain = init_gain

    def build(self, input_shape):
        c = input_shape[-1]
        self.offset = self.add_weight(name="offset", shape=(c,), initializer="zeros",
                                      trainable=False)
        self.gain = self.add_weight(name="gain", shape=(c,),
                                    initializer=keras.initializers.Constant(self.init_gain))
        super().build(input_shape)

    def call(self, inputs):
        return (inputs + self.offset) * self.gain

    def get_config(self):
        return {**super().get_config(), "init_gain": self.init_gain}


class ScaledDense(keras.layers.Layer):
    """``scale * (x @ kernel + bias)``."""

    def __init__(self, units, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.scale = units, scale

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], self.units))
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, inputs):
        return self.scale * (inputs @ self.kernel + self.bias)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "scale": self.scale}


class CTCLayer(keras.layers.Layer):
    """The OCR examples' endpoint: a training loss on (labels, predictions), returns predictions."""

    def call(self, y_true, y_pred):
        self.add_loss(_mean(y_pred) * 0.0 + _mean(y_true) * 0.0)
        return y_pred


if not TF:
    CTCLayer = keras.saving.register_keras_serializable(package="ocr")(CTCLayer)


class MinimalRNNCell(keras.layers.Layer):
    """Keras's documented custom cell: ``h = x @ kernel + h_tm1 @ recurrent_kernel``."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units),
                                                name="recurrent_kernel")

    def call(self, inputs, states):
        output = _matmul(inputs, self.kernel) + _matmul(states[0], self.recurrent_kernel)
        return output, [output]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class MemoryCell(keras.layers.Layer):
    """Two states of different widths, output U: ``m = tanh(h_tm1 @ W_m)``, ``h = tanh(x @
    W + m_tm1 @ W_b + bias)``; ``bias`` is frozen (listed after the trainable weights)."""

    def __init__(self, units, memory, **kwargs):
        super().__init__(**kwargs)
        self.units, self.memory = units, memory
        self.state_size = [units, memory]
        self.output_size = units

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(self.units,), name="bias", trainable=False,
                                    initializer="zeros")
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.w_m = self.add_weight(shape=(self.units, self.memory), name="w_m")
        self.w_b = self.add_weight(shape=(self.memory, self.units), name="w_b")

    def call(self, inputs, states):
        h, m = states[0], states[1]
        m_new = _tanh(_matmul(h, self.w_m))
        h_new = _tanh(_matmul(inputs, self.kernel) + _matmul(m, self.w_b) + self.bias)
        return h_new, [h_new, m_new]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "memory": self.memory}


def _randomise(model, rng):
    model.set_weights([rng.uniform(-0.7, 0.7, w.shape).astype("float32")
                       for w in model.get_weights()])


def gain_model():
    x = keras.Input((5, 3), name="x")
    h = keras.layers.LSTM(4, return_sequences=True)(x)
    h = ChannelGain(init_gain=1.5, name="gain")(h)
    h = keras.layers.LSTM(3)(h)
    return keras.Model(x, ScaledDense(2, scale=0.5, name="scaled")(h), name="gain_model")


def ctc_model():
    image = keras.Input((6, 3), name="image")
    label = keras.Input((4,), name="label")
    h = keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True))(image)
    y = keras.layers.Dense(5, activation="softmax", name="dense2")(h)
    out = CTCLayer(name="ctc_loss")(label, y)
    return keras.Model([image, label], out, name="ocr_model")


def deconv_model():
    x = keras.Input((4, 4, 2), name="image")
    h = keras.layers.Conv2DTranspose(2, (2, 2), name="deconv")(x)
    return keras.Model(x, keras.layers.Flatten()(h), name="deconv_model")


def _flatten(values):
    if isinstance(values, (list, tuple)):
        return [v for item in values for v in _flatten(item)]
    return [values]


def cell_model():
    """RNN(MinimalRNNCell) on floats; RNN([MemoryCell, LSTMCell]) backwards over a
    masked Embedding, with its states; both to Dense heads."""
    x = keras.Input((6, 3), name="x")
    ids = keras.Input((6,), name="ids", dtype="int32")
    a = keras.layers.RNN(MinimalRNNCell(4), return_sequences=True, name="minimal")(x)
    a = keras.layers.Dense(2, name="head_a")(a)
    e = keras.layers.Embedding(9, 3, mask_zero=True, name="emb")(ids)
    b, *states = keras.layers.RNN([MemoryCell(4, 3, name="memory"), keras.layers.LSTMCell(2)],
                                  go_backwards=True, return_state=True, name="stacked")(e)
    b = keras.layers.Concatenate(name="cat")([b] + _flatten(states))
    b = keras.layers.Dense(3, name="head_b")(b)
    return keras.Model([x, ids], [a, b], name="cell_model")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures_custom")
    out = ap.parse_args().out
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(17)
    tag = "tfk" if TF else "k3"
    m = gain_model()
    _randomise(m, rng)
    x = rng.standard_normal((2, 5, 3)).astype("float32")
    gain_w = {f"w_gain_{i}": w for i, w in enumerate(m.get_layer("gain").get_weights())}
    np.savez(os.path.join(out, f"{tag}_gain.npz"), x=x, y=m.predict(x, verbose=0), **gain_w)
    for ext in ("keras", "h5"):
        m.save(os.path.join(out, f"{tag}_gain.{ext}"))
    m = ctc_model()
    _randomise(m, rng)
    image = rng.standard_normal((2, 6, 3)).astype("float32")
    label = rng.integers(1, 5, (2, 4)).astype("float32")
    np.savez(os.path.join(out, f"{tag}_ctc.npz"), image=image, label=label,
             y=m.predict([image, label], verbose=0))
    for ext in ("keras", "h5"):
        m.save(os.path.join(out, f"{tag}_ctc.{ext}"))
    m = cell_model()
    _randomise(m, rng)
    x = rng.standard_normal((3, 6, 3)).astype("float32")
    ids = rng.integers(1, 9, (3, 6)).astype("int32")
    ids[0, 4:] = 0  # padding at the end,
    ids[1, :2] = 0  # at the start,
    ids[2, 2] = 0  # and a hole
    ya, yb = m.predict([x, ids], verbose=0)
    np.savez(os.path.join(out, f"{tag}_cells.npz"), x=x, ids=ids, ya=ya, yb=yb)
    for ext in ("keras", "h5"):
        m.save(os.path.join(out, f"{tag}_cells.{ext}"))
    if not TF:
        conv = deconv_model()
        conv.save(os.path.join(out, "k3_deconv.keras"))
        conv.save(os.path.join(out, "k3_deconv.h5"))
    print("wrote", sorted(os.listdir(out)))


if __name__ == "__main__":
    main()
