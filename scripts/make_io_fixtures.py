"""Write the small real model files in tests/fixtures_io/ and their expected outputs.

Needs (on the developer machine only, never in CI)::

    pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0 torch==2.13.0 onnx onnxruntime safetensors

Run ``python scripts/make_io_fixtures.py [k3 tfk nested state frozen torch onnx onnx_cells]`` from
the repository root (no argument: all but onnx_cells).  Every expected output comes from the framework
that wrote the file; the tests then need only NumPy, h5py and onnx.
"""
import json
import os
import sys

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures_io")
rng = np.random.default_rng(1234)


def _x(shape):
    return rng.standard_normal(shape).astype(np.float32)


def _tokens():
    t = rng.integers(1, 20, size=(4, 6)).astype(np.int32)
    t[0, 4:] = 0  # right padded
    t[1, :2] = 0  # left padded
    t[2, 2] = 0   # hole
    return t


def _randomise(model, seed):
    r = np.random.default_rng(seed)
    model.set_weights([r.uniform(-0.6, 0.6, w.shape).astype(w.dtype) for w in model.get_weights()])


def keras_models(K, tag):
    """Build the fixture models with a Keras module (keras 3 or tf_keras)."""
    L = K.layers
    # Functional, named layers (keys != names), Bidirectional, hard_sigmoid.
    inp = K.Input((5, 3), name="feats")
    h = L.Bidirectional(L.LSTM(4, return_sequences=True, name="enc"), name="bienc")(inp)
    h = L.LSTM(3, recurrent_activation="hard_sigmoid", name="decoder")(h)
    out = L.Dense(2, activation="tanh", name="head")(h)
    func = K.Model(inp, out, name="func_bidir")
    # Sequential with a masked Embedding, stacked LSTMs, TimeDistributed head.
    seq = K.Sequential([
        K.Input((6,), dtype="int32"),
        L.Embedding(20, 3, mask_zero=True),
        L.LSTM(4, return_sequences=True, go_backwards=True),
        L.LSTM(3, return_sequences=True, activation="relu", use_bias=False),
        L.TimeDistributed(L.Dense(2)),
    ], name="seq_emb")
    _randomise(func, 1)
    _randomise(seq, 2)
    return {"func_bidir": (func, [_x((3, 5, 3))]), "seq_emb": (seq, [_tokens()])}


def _masked_series(shape):
    x = _x(shape)
    x[0, 4:] = 0.0  # right padded (Masking(0.0) masks these steps)
    x[1, :2] = 0.0  # left padded
    x[2, 3] = 0.0   # hole
    return x


def nested_models(K, tag):
    """Models with nested models inside (Sequential in Sequential, functional in functional)."""
    L = K.layers
    enc = K.Sequential([K.Input((6, 3)), L.Masking(0.0, name="mask0"),
                        L.LSTM(4, return_sequences=True, name="enc_lstm")], name="enc")
    h_in = K.Input((3,), name="head_in")
    head = K.Model(h_in, L.Dense(2, activation="tanh", name="head_dense")(h_in), name="head")
    seq = K.Sequential([enc, L.LSTM(3, name="mid_lstm"), head], name="nest_seq")
    seq.build((None, 6, 3))  # tf_keras does not build from a nested first model
    # Functional: an Embedding mask into a two-input, two-output nested model whose
    # LSTM passes it on to the outer LSTM; a nested Sequential shared by two calls.
    tok = K.Input((6,), dtype="int32", name="tok")
    aux = K.Input((6, 2), name="aux")
    emb = L.Embedding(20, 4, mask_zero=True, name="emb")(tok)
    proj = K.Sequential([K.Input((6, 2)), L.Dense(2, activation="tanh", name="proj_dense")],
                        name="proj")
    p1 = proj(aux)
    p2 = proj(p1)
    ia, ib = K.Input((6, 4), name="ia"), K.Input((6, 2), name="ib")
    seq_i = L.LSTM(5, return_sequences=True, name="inner_lstm")(ia)
    inner = K.Model([ia, ib], [L.TimeDistributed(L.Dense(2), name="inner_td")(seq_i),
                               L.Dense(3, name="inner_dense")(ib)], name="inner")
    o1, o2 = inner([emb, p2])
    last = L.LSTM(3, name="outer_lstm")(o1)
    # Keras 3 builds o1 without a mask: this Concatenate's mask is then all-true.
    cat = L.LSTM(2, name="cat_lstm")(L.concatenate([o1, emb]))
    func = K.Model([tok, aux], [last, o2, p1, cat], name="nest_func")
    _randomise(seq, 3)
    _randomise(func, 4)
    return {"nest_seq": (seq, [_masked_series((4, 6, 3))]),
            "nest_func": (func, [_tokens(), _x((4, 6, 2))])}


def state_models(K, tag):
    """LSTMs given ``initial_state`` next to a mask (Keras 3 runs them unmasked)."""
    L = K.layers
    x, tok = _masked_series((4, 6, 3)), _tokens()
    out = {}
    # Masking -> encoder states -> decoder on the same masked tensor -> an LSTM after it.
    inp = K.Input((6, 3), name="x")
    e = L.Masking(0.0, name="mask0")(inp)
    _, h, c = L.LSTM(4, return_state=True, name="enc")(e)
    d = L.LSTM(4, return_sequences=True, name="dec")(e, initial_state=[h, c])
    out["state_encdec"] = (K.Model(inp, [d, L.LSTM(3, name="after")(d)], name="encdec"), [x])
    # Embedding mask, go_backwards decoder returning states, TimeDistributed head.
    ti = K.Input((6,), dtype="int32", name="tok")
    em = L.Embedding(20, 3, mask_zero=True, name="emb")(ti)
    _, h, c = L.LSTM(4, return_state=True, name="enc")(em)
    ds, dh, dc = L.LSTM(4, return_sequences=True, return_state=True, go_backwards=True,
                        name="dec")(em, initial_state=[h, c])
    td = L.TimeDistributed(L.Dense(2), name="td")(ds)
    out["state_emb"] = (K.Model(ti, [ds, dh, dc, td, L.LSTM(2, name="after")(td)],
                                name="emb_dec"), [tok])
    # Bidirectional encoder states into a Bidirectional decoder.
    inp = K.Input((6, 3), name="x")
    e = L.Masking(0.0, name="mask0")(inp)
    _, hf, cf, hb, cb = L.Bidirectional(L.LSTM(4, return_state=True), name="bienc")(e)
    bd = L.Bidirectional(L.LSTM(4, return_sequences=True), name="bidec")(
        e, initial_state=[hf, cf, hb, cb])
    out["state_bidir"] = (K.Model(inp, [bd, L.LSTM(3, name="after")(bd)], name="bidir_dec"),
                          [x])
    for i, (model, _) in enumerate(out.values()):
        _randomise(model, 10 + i)
    return out


def frozen_models(K, tag):
    """Frozen layers where Keras lists weights out of layer order (see weight_order.py).

    ``inner``: a trainable nested model whose first layer is frozen (legacy .h5 stores
    its trainable weights first); ``bi``: a trainable Bidirectional with a frozen
    forward layer (tf_keras's get_weights lists backward first); ``enc``: a frozen
    nested model.
    """
    L = K.layers
    inner = K.Sequential([K.Input((6, 3)), L.LSTM(4, return_sequences=True, name="a",
                                                  trainable=False),
                          L.LSTM(5, return_sequences=True, name="b")], name="inner")
    bi = L.Bidirectional(L.LSTM(3, return_sequences=True, name="fw", trainable=False),
                         backward_layer=L.LSTM(3, return_sequences=True, go_backwards=True,
                                               use_bias=False, name="bw"),
                         trainable=True, name="bi")
    bi2 = L.Bidirectional(L.LSTM(2, return_sequences=True, name="fw2"), name="bi2")
    enc = K.Sequential([K.Input((6, 6)), bi2], name="enc")
    enc.trainable = False  # (trainable flags set on sublayers after this do not survive a save)
    inp = K.Input((6, 3), name="x")
    h = enc(bi(inner(inp)))
    out = L.Dense(2, name="d")(L.LSTM(2, name="c", trainable=False)(h))
    model = K.Model(inp, out, name="frozen")
    _randomise(model, 20)
    return {"frozen": (model, [_x((3, 6, 3))])}


def save_keras(K, tag, legacy_h5_kwargs, build=keras_models):
    for name, (model, xs) in build(K, tag).items():
        base = os.path.join(OUT, f"{name}.{tag}")
        if build is state_models:  # the JSON, weights, inputs and outputs only
            ys = model.predict(xs[0], verbose=0)
            np.savez_compressed(base + ".npz", config_json=model.to_json(), x_0=xs[0],
                                **{f"y_{i}": np.asarray(y) for i, y in enumerate(ys)},
                                **{f"w_{i:03d}": w for i, w in enumerate(model.get_weights())})
            print("wrote", base)
            continue
        model.save(base + ".keras")
        model.save(base + ".h5", **legacy_h5_kwargs)
        ys = model.predict(xs[0] if len(xs) == 1 else xs, verbose=0)
        ys = ys if isinstance(ys, list) else [ys]
        ws = {f"w_{i:03d}": w for i, w in enumerate(model.get_weights())}
        arrays = {f"x_{i}": x for i, x in enumerate(xs)}
        arrays.update({f"y_{i}": np.asarray(y) for i, y in enumerate(ys)})
        if build is nested_models:
            lines = []
            model.summary(print_fn=lambda line, *a, **k: lines.append(line))
            arrays["summary"] = "\n".join(lines)
        if build is nested_models:
            np.savez_compressed(base + ".npz", config_json=model.to_json(), **arrays, **ws)
            print("wrote", base)
            continue
        if build is frozen_models:
            trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
            np.savez_compressed(base + ".npz", config_json=model.to_json(), **arrays, **ws,
                                trainable_params=trainable)
            model.save_weights(base + (".weights.h5" if tag == "k3" else ".weights-only.h5"))
            print("wrote", base)
            continue
        np.savez(base + ".npz", config_json=model.to_json(), **arrays, **ws)
        if tag == "k3":
            model.save_weights(base + ".weights.h5")
        else:
            model.save_weights(base + ".weights-only.h5")  # legacy weights-only h5 (tf_keras)
        print("wrote", base, "keras", K.__version__ if hasattr(K, "__version__") else "?")


def save_torch():
    import torch
    from safetensors.numpy import save_file

    torch.manual_seed(0)
    cases = {
        "torch_l2_bi": dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True, batch_first=True),
        "torch_l1_tm": dict(input_size=2, hidden_size=5, num_layers=1, bidirectional=False, batch_first=False),
    }
    for name, kw in cases.items():
        m = torch.nn.LSTM(**kw).eval()
        x = torch.randn(3, 7, kw["input_size"]) if kw["batch_first"] else torch.randn(7, 3, kw["input_size"])
        with torch.no_grad():
            y, (h, c) = m(x)
        sd = {k: v.numpy() for k, v in m.state_dict().items()}
        save_file(sd, os.path.join(OUT, name + ".safetensors"))
        torch.save(m.state_dict(), os.path.join(OUT, name + ".pt"))
        np.savez(os.path.join(OUT, name + ".npz"), x=x.numpy(), y=y.numpy(), h_n=h.numpy(), c_n=c.numpy(),
                 hparams=json.dumps(kw), **{"state." + k: v for k, v in sd.items()})
        print("wrote", name)


def save_onnx():
    import torch

    class Net(torch.nn.Module):
        def __init__(self, bidirectional):
            super().__init__()
            self.lstm = torch.nn.LSTM(3, 6, batch_first=True, bidirectional=bidirectional)
            self.head = torch.nn.Linear(6 * (2 if bidirectional else 1), 2)

        def forward(self, x):
            y, _ = self.lstm(x)
            return self.head(y[:, -1])

    class Seq(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(3, 4, num_layers=2)  # time-major, stacked

        def forward(self, x):
            return self.lstm(x)[0]

    torch.manual_seed(1)
    _export_onnx([("onnx_lstm_head", Net(False), torch.randn(2, 8, 3)),
                  ("onnx_bilstm_head", Net(True), torch.randn(2, 8, 3)),
                  ("onnx_stack_seq", Seq(), torch.randn(8, 2, 3))])


def _export_onnx(nets):
    """torch.onnx.export each (name, net, x) at opset 14, with x and the net's y beside it."""
    import torch

    for name, net, x in nets:
        net.eval()
        with torch.no_grad():
            y = net(x)
        path = os.path.join(OUT, name + ".onnx")
        torch.onnx.export(net, (x,), path, input_names=["x"], output_names=["y"],
                          opset_version=14, dynamo=False)
        np.savez(os.path.join(OUT, name + ".npz"), x=x.numpy(), y=y.numpy())
        print("wrote", name)


def save_onnx_cells():
    """torch.onnx.export of nn.GRU (linear_before_reset=1: a bidirectional head and a stack)
    and of a bidirectional relu nn.RNN."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = torch.nn.GRU(3, 5, batch_first=True, bidirectional=True)
            self.head = torch.nn.Linear(10, 2)

        def forward(self, x):
            y, _ = self.gru(x)
            return self.head(y[:, -1])

    class Seq(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = torch.nn.GRU(3, 4, num_layers=2)  # time-major, stacked

        def forward(self, x):
            return self.gru(x)[0]

    class Rnn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.RNN(3, 4, nonlinearity="relu", bidirectional=True)  # time-major

        def forward(self, x):
            return self.rnn(x)[0]

    torch.manual_seed(2)
    _export_onnx([("onnx_bigru_head", Net(), torch.randn(2, 7, 3)),
                  ("onnx_gru_stack_seq", Seq(), torch.randn(7, 2, 3))])
    _export_onnx([("onnx_birnn_relu_seq", Rnn(), torch.randn(7, 2, 3))])


def main():
    os.makedirs(OUT, exist_ok=True)
    which = set(sys.argv[1:]) or {"k3", "tfk", "nested", "state", "frozen", "torch", "onnx"}
    if "k3" in which:
        import keras

        save_keras(keras, "k3", {})
    if "tfk" in which:
        import tf_keras

        save_keras(tf_keras, "tfk", {"save_format": "h5"})
    if "nested" in which:  # nested models, both dialects
        import keras
        import tf_keras

        save_keras(keras, "k3", {}, nested_models)
        save_keras(tf_keras, "tfk", {"save_format": "h5"}, nested_models)
    if "state" in which:  # initial_state with masks, both dialects
        import keras
        import tf_keras

        save_keras(keras, "k3", {}, state_models)
        save_keras(tf_keras, "tfk", {}, state_models)
    if "frozen" in which:  # frozen layers: weight orders, both dialects
        import keras
        import tf_keras

        save_keras(keras, "k3", {}, frozen_models)
        save_keras(tf_keras, "tfk", {"save_format": "h5"}, frozen_models)
    if "torch" in which:
        save_torch()
    if "onnx" in which:
        save_onnx()
    if "onnx_cells" in which:  # not in the default set: it came later
        save_onnx_cells()


if __name__ == "__main__":
    main()
