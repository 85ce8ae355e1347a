"""Write the SimpleRNN / RNN(cell) fixtures under tests/fixtures_rnn, from Keras 3 and
tf_keras 2 (run it under each):

    KERAS_BACKEND=jax python scripts/make_rnn_fixtures.py --out tests/fixtures_rnn
    /work/tfvenv/bin/python scripts/make_rnn_fixtures.py --out tests/fixtures_rnn

Each layer case ``<gen>_<name>.npz`` (gen ``k3`` or ``tf2``) holds a layer built with
seeded random weights and called on CPU:

==============  ==============================================================
config_json     ``{"class_name": ..., "config": layer.get_config()}``
meta_json       keras_version, count_params, call arguments
w_0 .. w_n-1    ``layer.get_weights()``
x, mask, h0_*   the call's input, mask (or absent), initial states (or absent)
out_0 ..        what the layer returned, flattened (a stateful case: ``x`` and every
                ``out_*`` have a leading axis of calls, states kept between them)
==============  ==============================================================

Models ``<gen>_model_<name>.keras`` (Keras 3) / ``.h5`` (and ``.json``, the model's
``to_json()``) with ``<gen>_model_<name>.npz`` holding ``x`` and ``model.predict(x)`` as
``y``: ``simple`` (Masking -> Bidirectional(SimpleRNN) -> SimpleRNN -> Dense) and ``cells``
(Masking -> RNN(LSTMCell) -> Bidirectional(RNN(GRUCell)) -> RNN(StackedRNNCells) -> Dense).
Tests read everything with NumPy / h5py only (``allow_pickle=False``).
"""
import argparse
import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

try:  # tf_keras 2 where installed (the tf venv), else Keras 3
    import tf_keras as keras  # noqa: E402
    GEN = "tf2"
except ImportError:
    import keras  # noqa: E402
    GEN = "k3"
import numpy as np  # noqa: E402

B, T, D, U = 3, 7, 4, 5
L = keras.layers


def _randomise(layer, rng):
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape).astype("float32")
                       for w in layer.get_weights()])


def _mask(rng):
    m = rng.random((B, T)) > 0.3
    m[0, :] = True
    m[1, :2] = False  # left padding
    m[2, -3:] = False  # right padding
    return m


def _cells(kind):
    return {"lstm": lambda: L.LSTMCell(U), "gru": lambda: L.GRUCell(U),
            "simple": lambda: L.SimpleRNNCell(U, activation="relu"),
            "stacked": lambda: L.StackedRNNCells([L.LSTMCell(U), L.GRUCell(U + 1),
                                                  L.SimpleRNNCell(U)])}[kind]()


def _tensor(v):
    if GEN == "tf2":
        import tensorflow as tf

        return tf.constant(v)
    return v


CASES = {
    # name: (builder, use mask, initial states (sizes) or None)
    "simple_default": (lambda: L.SimpleRNN(U), False, None),
    "simple_relu_seq": (lambda: L.SimpleRNN(U, activation="relu", return_sequences=True),
                        False, None),
    "simple_backwards_mask": (lambda: L.SimpleRNN(U, go_backwards=True, return_sequences=True),
                              True, None),
    "simple_return_state": (lambda: L.SimpleRNN(U, return_state=True, return_sequences=True),
                            False, [U]),
    "simple_no_bias": (lambda: L.SimpleRNN(U, use_bias=False, activation="sigmoid"), True, None),
    "simple_bidirectional": (lambda: L.Bidirectional(L.SimpleRNN(U, return_sequences=True)),
                             True, None),
    "simple_bidirectional_state": (lambda: L.Bidirectional(L.SimpleRNN(U, return_state=True),
                                                           merge_mode="sum"), False, None),
    "rnn_lstm": (lambda: L.RNN(L.LSTMCell(U), return_sequences=True), True, None),
    "rnn_gru": (lambda: L.RNN(L.GRUCell(U, reset_after=False), go_backwards=True), False, None),
    "rnn_simple": (lambda: L.RNN(L.SimpleRNNCell(U, activation="relu"), return_state=True),
                   False, [U]),
    "rnn_stacked": (lambda: L.RNN(_cells("stacked"), return_sequences=True, return_state=True),
                    True, None),
    # StackedRNNCells' initial states nest per cell: [[h, c], [h], [h]]
    "rnn_stacked_h0": (lambda: L.RNN(_cells("stacked"), return_state=True), False,
                       [[U, U], [U + 1], [U]]),
    "rnn_cells_list": (lambda: L.RNN([L.SimpleRNNCell(U), L.GRUCell(U)]), False, None),
}


def _flat(res):
    out = []
    for r in res if isinstance(res, (list, tuple)) else [res]:
        out.extend(_flat(r) if isinstance(r, (list, tuple)) else [np.asarray(r)])
    return out


def layer_case(name, build, use_mask, h0, rng, out):
    layer = build()
    x = rng.standard_normal((B, T, D)).astype("float32")
    layer.build((B, T, D))
    _randomise(layer, rng)
    call, data = {}, {"x": x}
    if use_mask:
        data["mask"] = call["mask"] = _mask(rng)
    if h0:
        k = 0

        def draw(n):
            nonlocal k
            if isinstance(n, list):
                return [draw(v) for v in n]
            data[f"h0_{k}"] = s = rng.standard_normal((B, n)).astype("float32")
            k += 1
            return _tensor(s)

        call["initial_state"] = draw(h0)
    for i, r in enumerate(_flat(layer(x, **call))):
        data[f"out_{i}"] = r
    _save(out, name, layer, data)


def stateful_case(rng, out):
    layer = L.SimpleRNN(U, stateful=True, return_sequences=True)
    layer.build((B, T, D))
    _randomise(layer, rng)
    xs = rng.standard_normal((2, B, T, D)).astype("float32")
    outs = [np.asarray(layer(x)) for x in xs]
    _save(out, "simple_stateful", layer, {"x": xs, "out_0": np.stack(outs)})


def _save(out, name, layer, data):
    meta = {"keras_version": keras.__version__, "count_params": int(layer.count_params())}
    for i, w in enumerate(layer.get_weights()):
        data[f"w_{i}"] = np.asarray(w)
    cfg = {"class_name": type(layer).__name__, "config": layer.get_config()}
    np.savez_compressed(os.path.join(out, f"{GEN}_{name}.npz"),
                        config_json=json.dumps(cfg, default=str), meta_json=json.dumps(meta),
                        **data)


def _simple_model():
    inp = keras.Input((T, D))
    h = L.Masking()(inp)
    h = L.Bidirectional(L.SimpleRNN(U, return_sequences=True))(h)
    h = L.SimpleRNN(U, activation="relu")(h)
    return keras.Model(inp, L.Dense(2)(h))


def _cells_model():
    inp = keras.Input((T, D))
    h = L.Masking()(inp)
    h = L.RNN(L.LSTMCell(U), return_sequences=True)(h)
    h = L.Bidirectional(L.RNN(L.GRUCell(U), return_sequences=True))(h)
    h = L.RNN(L.StackedRNNCells([L.GRUCell(U), L.SimpleRNNCell(U)]))(h)
    return keras.Model(inp, L.Dense(2)(h))


def models(rng, out):
    x = rng.standard_normal((B, T, D)).astype("float32")
    x[1, :2] = 0.0
    x[2, -3:] = 0.0
    for name, build in (("simple", _simple_model), ("cells", _cells_model)):
        m = build()
        for layer in m.layers:
            if layer.weights:
                _randomise(layer, rng)
        base = os.path.join(out, f"{GEN}_model_{name}")
        if GEN == "k3":
            m.save(base + ".keras")
        m.save(base + ".h5")
        with open(base + ".json", "w") as f:
            f.write(m.to_json())
        np.savez_compressed(base + ".npz", x=x, y=np.asarray(m.predict(x, verbose=0)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="tests/fixtures_rnn")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(17 if GEN == "k3" else 18)
    for name, case in CASES.items():
        layer_case(name, *case, rng, args.out)
    stateful_case(rng, args.out)
    models(rng, args.out)
    print("wrote", sorted(f for f in os.listdir(args.out) if f.startswith(GEN)))


if __name__ == "__main__":
    main()
