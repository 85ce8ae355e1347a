"""Write Keras 2 weight-loading fixtures under tests/fixtures_keras2 (tf_keras 2.21 + h5py).

    /work/tfvenv/bin/python scripts/make_keras2_fixtures.py --out tests/fixtures_keras2

1. CuDNN files, written by hand with h5py as Keras 2.1.5 wrote them (tf_keras 2.21 no
   longer has CuDNNLSTM / CuDNNGRU), from random weights in cuDNN's layout:

   - ``cudnn_k215.h5``: a full model file (root attributes ``keras_version="2.1.5"``,
     ``backend``, ``model_config`` with Keras 2.1.5's Sequential config, a list of layer
     configs): ``Bidirectional(CuDNNLSTM(4, return_sequences=True))`` -> ``CuDNNGRU(3)``
     -> ``Dense(2)``; weights under ``model_weights/<layer>/<weight name>``, each layer's
     ``weight_names`` in Keras's order, CuDNNLSTM bias (8 * units,), CuDNNGRU bias
     (6 * units,) (``keras/engine/topology.py`` ``save_weights_to_hdf5_group``, 2.1.5).
   - ``cudnn_k215.weights-only.h5``: the same weights as ``save_weights`` wrote them
     (``layer_names`` on the root).

   What Keras does with them on loading (tf_keras/src/saving/legacy/hdf5_format.py,
   ``preprocess_weights_for_loading`` -> ``_convert_rnn_weights``, lines 494-668 in
   tf_keras 2.21): the source type is told by the bias shape (units = the recurrent
   kernel's rows); CuDNNLSTM -> LSTM: each gate's input kernel ``k`` becomes
   ``k.T.reshape(k.shape, order="F")``, each gate's recurrent kernel ``k.T``, the two
   bias halves are summed; CuDNNGRU -> GRU(reset_after=True): the same kernel
   transforms, the bias reshaped to (2, 3 * units).  Those converted weights are what
   the expected output is computed from: this script loads the weights-only file into
   the equivalent tf_keras model (Bidirectional(LSTM) -> GRU(reset_after=True,
   recurrent_activation="sigmoid") -> Dense) with tf_keras's own legacy loader, takes
   its ``get_weights()`` and runs tests/naive.py (float64) on them; tf_keras's
   ``predict`` is checked against that too.  ``cudnn_k215.npz``: ``x``, ``y`` (naive,
   float64), ``w_0..`` (the converted weights, get_weights order).

2. Partial loading, all by tf_keras: ``encoder.h5`` is ``save_weights`` of model A
   (Input -> LSTM(4, name="encoder", recurrent_activation="hard_sigmoid",
   return_sequences=True) -> LSTM(3, name="summary") -> Dense(3, name="head") ->
   Dense(2, name="extra")); model B (Input -> LSTM "encoder" as in A -> LSTM
   "summary" as in A -> Dense(6, name="mid") (not in the file) -> Dense(3, name="head")
   (kernel (6, 3) where the file has (3, 3): mismatch; its bias matches) -> Dense(1,
   name="new_out")) loads it with ``load_weights(by_name=True, skip_mismatch=True)``.
   ``encoder.npz``: ``x``, ``y_a`` (A's output), ``b_init_*`` (B's weights before
   loading), ``y_b`` (B's output after loading), ``b_json`` / ``a_json`` (the models'
   tf_keras JSON).  hard_sigmoid here is tf_keras's (0.2 x + 0.5): the file's
   ``keras_version`` (2.21.0) is what tells a loader so.

3. ``lstm_k22.weights-only.h5`` / ``.npz``: a Keras 2.2.0 ``save_weights`` file of
   LSTM(5, return_sequences=True) -> LSTM(3) with hard_sigmoid, by hand (``write_k22``).

4. ``ocr.tfk.h5`` / ``.npz``: the two-input OCR-shaped model of
   make_submodel_fixtures.py made and saved by tf_keras, with the output of its
   prediction sub-model ``Model(model.input[0], model.get_layer("dense2").output)``.
"""
import argparse
import json
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import naive  # noqa: E402

B, T, D = 3, 5, 3
U1, U2, OUT = 4, 3, 2

GLOROT = {"class_name": "VarianceScaling",
          "config": {"scale": 1.0, "mode": "fan_avg", "distribution": "uniform", "seed": None}}
ORTHO = {"class_name": "Orthogonal", "config": {"gain": 1.0, "seed": None}}
ZEROS = {"class_name": "Zeros", "config": {}}


def _rnn_cfg(name, units, return_sequences, lstm=True):
    """A Keras 2.1.5 CuDNNLSTM / CuDNNGRU ``get_config()``."""
    cfg = {"name": name, "trainable": True, "return_sequences": return_sequences,
           "return_state": False, "go_backwards": False, "stateful": False, "units": units,
           "kernel_initializer": GLOROT, "recurrent_initializer": ORTHO,
           "bias_initializer": ZEROS}
    if lstm:
        cfg["unit_forget_bias"] = True
    cfg.update({k: None for k in ("kernel_regularizer", "recurrent_regularizer",
                                  "bias_regularizer", "activity_regularizer",
                                  "kernel_constraint", "recurrent_constraint",
                                  "bias_constraint")})
    return cfg


def _model_config():
    bidi = {"name": "bidirectional_1", "trainable": True, "batch_input_shape": [None, T, D],
            "dtype": "float32", "merge_mode": "concat",
            "layer": {"class_name": "CuDNNLSTM",
                      "config": _rnn_cfg("cu_dnnlstm_1", U1, True)}}
    dense = {"name": "dense_1", "trainable": True, "units": OUT, "activation": "linear",
             "use_bias": True, "kernel_initializer": GLOROT, "bias_initializer": ZEROS,
             "kernel_regularizer": None, "bias_regularizer": None,
             "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None}
    return {"class_name": "Sequential", "config": [
        {"class_name": "Bidirectional", "config": bidi},
        {"class_name": "CuDNNGRU", "config": _rnn_cfg("cu_dnngru_1", U2, False, lstm=False)},
        {"class_name": "Dense", "config": dense}]}


def _cudnn_weights(rng):
    """Per layer: [(weight name, value)] in a Keras 2.1.5 file's order."""
    def u(*shape):
        return rng.uniform(-0.5, 0.5, shape).astype("float32")

    lstm = lambda: [u(D, 4 * U1), u(U1, 4 * U1), u(8 * U1)]  # noqa: E731
    fw, bw = lstm(), lstm()
    names = ("kernel:0", "recurrent_kernel:0", "bias:0")
    return [
        ("bidirectional_1",
         [(f"bidirectional_1/forward_cu_dnnlstm_1/{n}", w) for n, w in zip(names, fw)] +
         [(f"bidirectional_1/backward_cu_dnnlstm_1/{n}", w) for n, w in zip(names, bw)]),
        ("cu_dnngru_1", [(f"cu_dnngru_1/{n}", w) for n, w in
                         zip(names, [u(2 * U1, 3 * U2), u(U2, 3 * U2), u(6 * U2)])]),
        ("dense_1", [("dense_1/kernel:0", u(U2, OUT)), ("dense_1/bias:0", u(OUT))]),
    ]


def _write_groups(g, layers):
    g.attrs["layer_names"] = [name.encode("utf8") for name, _ in layers]
    g.attrs["backend"] = b"tensorflow"
    g.attrs["keras_version"] = b"2.1.5"
    for name, weights in layers:
        lg = g.create_group(name)
        lg.attrs["weight_names"] = [n.encode("utf8") for n, _ in weights]
        for n, w in weights:
            ds = lg.create_dataset(n, w.shape, dtype=w.dtype)
            ds[:] = w


def write_cudnn(out, rng):
    import tf_keras as keras

    layers = _cudnn_weights(rng)
    with h5py.File(os.path.join(out, "cudnn_k215.h5"), "w") as f:
        f.attrs["keras_version"] = b"2.1.5"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(_model_config()).encode("utf8")
        _write_groups(f.create_group("model_weights"), layers)
    weights_only = os.path.join(out, "cudnn_k215.weights-only.h5")
    with h5py.File(weights_only, "w") as f:
        _write_groups(f, layers)
    # tf_keras's own legacy loader converts the CuDNN weights (hdf5_format.py)
    ref = keras.Sequential([
        keras.layers.Bidirectional(keras.layers.LSTM(U1, return_sequences=True),
                                   input_shape=(T, D)),
        keras.layers.GRU(U2, reset_after=True, recurrent_activation="sigmoid"),
        keras.layers.Dense(OUT)])
    ref.load_weights(weights_only)
    w = ref.get_weights()
    x = rng.uniform(-1, 1, (B, T, D)).astype("float32")
    seq = naive.bidirectional(x, w[0:3], w[3:6], return_sequences=True)
    _, last, _ = naive.gru(seq, w[6], w[7], w[8], reset_after=True)
    y = naive.dense(last, w[9], w[10])
    y_tf = ref.predict(x, verbose=0)
    assert np.max(np.abs(y_tf - y)) < 1e-5, np.max(np.abs(y_tf - y))
    # the conversion is not the identity: the raw file weights give other numbers
    assert not np.allclose(w[0], layers[0][1][0][1])
    np.savez(os.path.join(out, "cudnn_k215.npz"), x=x, y=y,
             **{f"w_{i}": v for i, v in enumerate(w)})


def write_k22(out, rng):
    """A Keras 2.2.0 ``save_weights`` file of two LSTMs with Keras 2.2's default
    ``recurrent_activation="hard_sigmoid"`` (its formula: clip(0.2 x + 0.5, 0, 1)),
    named as Keras 2.2 named them (``lstm_3/kernel:0``: no cell scope), by hand with
    h5py; expected output from tests/naive.py with the Keras 2 hard_sigmoid."""
    def u(*shape):
        return rng.uniform(-1, 1, shape).astype("float32")

    w3 = [u(D, 4 * 5), u(5, 4 * 5), u(4 * 5)]
    w4 = [u(5, 4 * 3), u(3, 4 * 3), u(4 * 3)]
    names = ("kernel:0", "recurrent_kernel:0", "bias:0")
    with h5py.File(os.path.join(out, "lstm_k22.weights-only.h5"), "w") as f:
        f.attrs["layer_names"] = [b"lstm_3", b"lstm_4"]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.0"
        for lname, ws in (("lstm_3", w3), ("lstm_4", w4)):
            g = f.create_group(lname)
            g.attrs["weight_names"] = [f"{lname}/{n}".encode() for n in names]
            for n, w in zip(names, ws):
                g.create_dataset(f"{lname}/{n}", data=w)
    x = rng.uniform(-3, 3, (B, T, D)).astype("float32")
    kw = dict(recurrent_activation="hard_sigmoid", hard_sigmoid="keras2")
    seq, _, _, _ = naive.lstm(x, *w3, **kw)
    _, last, _, _ = naive.lstm(seq, *w4, **kw)
    np.savez(os.path.join(out, "lstm_k22.npz"), x=x, y=last)


def write_ocr(out, rng):
    """tf_keras's take on the OCR-shaped two-input model of make_submodel_fixtures.py
    (saved as legacy ``.h5``), and its prediction sub-model's output."""
    import tf_keras as keras
    from tf_keras import layers

    image = keras.Input((16, 8, 1), name="image")
    label = keras.Input((8,), name="label")
    x = layers.Conv2D(4, (3, 3), activation="relu", padding="same", name="Conv1")(image)
    x = layers.MaxPooling2D((2, 2), name="pool1")(x)
    x = layers.Reshape((8, 16), name="reshape")(x)
    x = layers.Dense(8, activation="relu", name="dense1")(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Bidirectional(layers.LSTM(6, return_sequences=True, dropout=0.25))(x)
    x = layers.Dense(5, activation="softmax", name="dense2")(x)
    steps = layers.Reshape((8, 1), name="label_steps")(label)
    out_t = layers.Concatenate(name="ctc_loss")([x, steps])  # stands in for the CTC layer
    model = keras.Model([image, label], out_t, name="ocr_model_v1")
    model.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype("float32")
                       for w in model.get_weights()])
    img = rng.random((3, 16, 8, 1)).astype("float32")
    lab = rng.integers(0, 5, (3, 8)).astype("float32")
    sub = keras.Model(model.input[0], model.get_layer("dense2").output)
    model.save(os.path.join(out, "ocr.tfk.h5"))
    np.savez(os.path.join(out, "ocr.tfk.npz"), image=img, label=lab,
             y=model.predict([img, lab], verbose=0), y_sub=sub.predict(img, verbose=0),
             sub_layers=np.array([lyr.name for lyr in sub.layers]))


def write_partial(out, rng):
    import tf_keras as keras
    from tf_keras import layers

    def trunk(inp):
        x = layers.LSTM(4, name="encoder", recurrent_activation="hard_sigmoid",
                        return_sequences=True)(inp)
        return layers.LSTM(3, name="summary", recurrent_activation="hard_sigmoid")(x)

    inp = keras.Input((T, D))
    a = keras.Model(inp, layers.Dense(2, name="extra")(layers.Dense(3, name="head")(trunk(inp))))
    a.set_weights([rng.uniform(-1, 1, v.shape).astype("float32") for v in a.get_weights()])
    path = os.path.join(out, "encoder.h5")
    a.save_weights(path)
    inp = keras.Input((T, D))
    mid = layers.Dense(6, name="mid")(trunk(inp))
    b = keras.Model(inp, layers.Dense(1, name="new_out")(layers.Dense(3, name="head")(mid)))
    b_init = [rng.uniform(-1, 1, v.shape).astype("float32") for v in b.get_weights()]
    b.set_weights(b_init)
    b.load_weights(path, by_name=True, skip_mismatch=True)
    x = rng.uniform(-3, 3, (B, T, D)).astype("float32")  # reaches hard_sigmoid's bends
    np.savez_compressed(os.path.join(out, "encoder.npz"), x=x, y_a=a.predict(x, verbose=0),
             y_b=b.predict(x, verbose=0), a_json=np.array(a.to_json()),
             b_json=np.array(b.to_json()),
             **{f"b_init_{i}": v for i, v in enumerate(b_init)})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures_keras2")
    out = ap.parse_args().out
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(2)
    write_cudnn(out, rng)
    write_partial(out, rng)
    write_k22(out, rng)
    write_ocr(out, rng)
    print("wrote", sorted(os.listdir(out)))


if __name__ == "__main__":
    main()
