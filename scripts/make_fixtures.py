"""Write the Keras golden fixtures under tests/fixtures (needs TensorFlow).

    pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0   # brings keras 3.15.1
    python scripts/make_fixtures.py --out tests/fixtures

Every single-layer case builds a real ``tf_keras`` (Keras 2 API) and/or Keras 3
``LSTM(units, name="lstm", **layer_kwargs)``, replaces its weights with seeded
random values (or keeps the initializer's bias where the case is about
initializers), calls it on CPU and stores, in ``<prefix>lstm_<case>.npz``:

=================  ==========================================================
meta_json          framework, keras_version, layer_kwargs, call, shapes, ...
config_json        ``layer.get_config()``
kernel, recurrent_kernel, bias   ``get_weights()`` after replacement
init_bias          the bias exactly as Keras initialised it
x, mask, initial_h, initial_c    the call arguments the case uses
out_0 .. out_n-1   what the layer returned
seq, h, c          the same layer with return_sequences=True, return_state=True
=================  ==========================================================

Stateful cases have a leading call axis on ``x``, ``out_*``, ``seq``, ``h`` and
``c``; ``reset_before[k]`` says ``reset_states()`` was called before call k, and
``states_after_h``/``states_after_c`` hold the layer's states after every call.
Tests read these with NumPy only (``allow_pickle=False``).  The layout follows
the shared golden set, so one loader reads both.

Model fixtures (``models/model_<name>.<tfk|k3>.npz``): ``model.to_json()``,
``get_weights()`` as ``w_000``..., inputs ``x_0`` and ``model.predict`` output ``y_0``;
``meta_json`` has keras_version, count_params and weight_names.  ``lstm8_dense2`` is
also saved as ``model_lstm8_dense2.keras`` (Keras 3) and ``.tfk.h5`` (tf_keras).
Meta ``activation_flavour`` is "keras2" for tf_keras files (hard_sigmoid =
clip(0.2x + 0.5)) and "keras3" for Keras 3 files (clip(x/6 + 0.5)).
"""
import argparse
import json
import os
import sys
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "0")

import numpy as np  # noqa: E402

B, T, D, U = 3, 5, 3, 5  # small sizes with remainders (not multiples of any tile)

ACTS_BOTH = ["linear", "tanh", "sigmoid", "hard_sigmoid", "relu", "softsign", "softplus", "elu",
             "selu", "swish", "silu", "gelu", "exponential", "relu6", "leaky_relu", "mish"]
ACTS_K3_ONLY = ["hard_silu", "log_sigmoid", "hard_tanh", "celu"]


def _case(name, kwargs=None, frameworks=("tf_keras", "keras"), mask=None, initial_state=False,
          nan_masked=False, stateful_calls=0, shape=(B, T, D, U), dtype="float32",
          keep_init_bias=False, description="", wscale=1.0):
    return dict(name=name, kwargs=kwargs or {}, frameworks=frameworks, mask=mask, wscale=wscale,
                initial_state=initial_state, nan_masked=nan_masked, stateful_calls=stateful_calls,
                shape=shape, dtype=dtype, keep_init_bias=keep_init_bias, description=description)


def cases():
    """The grid of single-layer cases."""
    out = [
        _case("default", description="all defaults, last output only"),
        _case("return_sequences", {"return_sequences": True}),
        _case("return_state", {"return_state": True}),
        _case("seq_state", {"return_sequences": True, "return_state": True}),
        _case("go_backwards", {"go_backwards": True}),
        _case("go_backwards_seq_state", {"go_backwards": True, "return_sequences": True,
                                         "return_state": True}),
        _case("use_bias_false", {"use_bias": False, "return_state": True}),
        _case("initial_state", {"return_state": True}, initial_state=True),
        _case("unroll", {"unroll": True, "return_sequences": True}),
        _case("dropout_inference", {"dropout": 0.3, "recurrent_dropout": 0.2,
                                    "return_sequences": True}),
        _case("b1_t1_d1_u1", {"return_state": True}, shape=(1, 1, 1, 1)),
        _case("u33_t17", {"return_state": True}, shape=(2, 17, 4, 33)),
        _case("float64", {"return_sequences": True, "return_state": True}, dtype="float64",
              mask="holes", initial_state=True),
    ]
    for ufb in (True, False):
        for init in ("zeros", "ones"):
            out.append(_case(f"init_ufb_{str(ufb).lower()}_{init}",
                             {"unit_forget_bias": ufb, "bias_initializer": init},
                             keep_init_bias=True, description="initializer bias kept"))
    for act in ACTS_BOTH + ACTS_K3_ONLY:
        fw = ("keras",) if act in ACTS_K3_ONLY else ("tf_keras", "keras")
        # exp(c) feeds back through h: smaller weights keep it finite.
        out.append(_case(f"act_{act}", {"activation": act, "return_state": True}, frameworks=fw,
                         wscale=0.1 if act == "exponential" else 1.0))
    for ract in ("hard_sigmoid", "tanh", "linear", "relu"):
        out.append(_case(f"ract_{ract}", {"recurrent_activation": ract, "return_state": True}))
    out.append(_case("act_ract_hard_sigmoid_seq", {"activation": "hard_sigmoid",
                                                   "recurrent_activation": "hard_sigmoid",
                                                   "return_sequences": True}))
    # Masks: every pattern, with NaN in x at masked steps, with and without initial state.
    for pat in ("right", "left", "holes", "all_masked_row"):
        out.append(_case(f"mask_{pat}_seq_state", {"return_sequences": True, "return_state": True},
                         mask=pat, initial_state=True, nan_masked=True))
        out.append(_case(f"mask_{pat}_last", {}, mask=pat))
    out += [
        _case("mask_holes_backwards_seq_state", {"go_backwards": True, "return_sequences": True,
                                                 "return_state": True},
              mask="holes", initial_state=True, nan_masked="inf"),
        _case("mask_zero_output_seq_state", {"zero_output_for_mask": True, "return_sequences": True,
                                             "return_state": True},
              mask="all_masked_row", initial_state=True, nan_masked=True),
        _case("mask_zero_output_last", {"zero_output_for_mask": True}, mask="right"),
        _case("mask_zero_output_backwards_seq", {"zero_output_for_mask": True, "go_backwards": True,
                                                 "return_sequences": True}, mask="holes"),
        _case("mask_act_relu_ract_hard_sigmoid", {"activation": "relu",
                                                   "recurrent_activation": "hard_sigmoid",
                                                   "return_sequences": True, "return_state": True},
              mask="holes", nan_masked=True),
        _case("stateful", {"stateful": True}, stateful_calls=4),
        _case("stateful_seq_state", {"stateful": True, "return_sequences": True,
                                     "return_state": True}, stateful_calls=4),
        _case("stateful_backwards_mask", {"stateful": True, "go_backwards": True,
                                          "return_sequences": True}, stateful_calls=4, mask="right"),
        _case("time_major", {"time_major": True}, frameworks=("tf_keras",)),
        _case("time_major_seq_state_mask", {"time_major": True, "return_sequences": True,
                                            "return_state": True},
              frameworks=("tf_keras",), mask="holes", initial_state=True, nan_masked=True),
    ]
    return out


def make_mask(pattern, b, t):
    """A (B, T) bool mask of the named pattern; every pattern has at least one padded step."""
    m = np.ones((b, t), dtype=bool)
    lens = [max(1, t - 1 - (i % max(1, t - 1))) for i in range(b)]
    if pattern == "right":
        for i, n in enumerate(lens):
            m[i, n:] = False
    elif pattern == "left":
        for i, n in enumerate(lens):
            m[i, : t - n] = False
    elif pattern in ("holes", "all_masked_row"):
        rng = np.random.default_rng(12345 + b * 100 + t)
        m = rng.random((b, t)) > 0.4
        m[0, 0], m[0, -1] = False, True  # a leading hole and a final valid step
        if pattern == "all_masked_row":
            m[min(1, b - 1)] = False
    else:
        raise ValueError(pattern)
    return m


def _seed(name):
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def _import(framework):
    if framework == "tf_keras":
        import tf_keras as k
    else:
        import keras as k
    return k


def _random_weights(rng, d, u, use_bias, dtype, scale=1.0):
    # Scaled so gates sit in their non-linear ranges without saturating.
    w = [rng.uniform(-0.6, 0.6, (d, 4 * u)) * scale, rng.uniform(-0.6, 0.6, (u, 4 * u)) * scale]
    if use_bias:
        w.append(rng.uniform(-0.5, 0.5, 4 * u))
    return [a.astype(dtype) for a in w]


def _to_np(o):
    return [np.asarray(v) for v in (o if isinstance(o, (list, tuple)) else [o])]


def run_case(case, framework):
    """Build, call and record one case with one framework; returns the npz dict."""
    k = _import(framework)
    bsz, t, d, u = case["shape"]
    dtype = case["dtype"]
    kwargs = dict(case["kwargs"])
    time_major = kwargs.get("time_major", False)
    seed = _seed(case["name"])
    rng = np.random.default_rng(seed)
    if dtype != "float32":
        kwargs["dtype"] = dtype

    x = rng.normal(0.0, 1.0, (bsz, t, d)).astype(dtype)
    mask = make_mask(case["mask"], bsz, t) if case["mask"] else None
    h0 = rng.normal(0.0, 0.5, (bsz, u)).astype(dtype) if case["initial_state"] else None
    c0 = rng.normal(0.0, 0.5, (bsz, u)).astype(dtype) if case["initial_state"] else None
    n_calls = case["stateful_calls"]
    xs = rng.normal(0.0, 1.0, (n_calls, bsz, t, d)).astype(dtype) if n_calls else None
    if case["nan_masked"]:
        # Garbage Keras never reads: NaN, or +/-inf for nan_masked="inf".
        bad = np.where(rng.random(x.shape) < 0.5, np.inf, -np.inf) if case["nan_masked"] == "inf" \
            else np.nan
        x = np.where(mask[..., None], x, bad).astype(dtype)

    def to_layout(a):
        return None if a is None else (np.swapaxes(a, 0, 1) if time_major else a)

    def build(extra):
        layer = k.layers.LSTM(u, name="lstm", **{**kwargs, **extra})
        shape = (t, bsz, d) if time_major else (bsz, t, d)
        layer.build(shape)
        return layer

    layer = build({})
    init_w = [np.asarray(w) for w in layer.get_weights()]
    use_bias = kwargs.get("use_bias", True)
    if case["keep_init_bias"]:
        new_w = _random_weights(rng, d, u, False, dtype, case["wscale"]) + ([init_w[2]] if use_bias else [])
    else:
        new_w = _random_weights(rng, d, u, use_bias, dtype, case["wscale"])
    layer.set_weights(new_w)
    twin = build({"return_sequences": True, "return_state": True})
    twin.set_weights(new_w)

    import tensorflow as tf

    # tf_keras wants tensors, not arrays, for mask and initial_state.
    call = {"training": False}
    if mask is not None:
        call["mask"] = tf.constant(to_layout(mask))
    if h0 is not None:
        call["initial_state"] = [tf.constant(h0), tf.constant(c0)]

    rec = {}
    if n_calls:
        reset_before = np.array([False, False, False, True])
        outs, full, st_h, st_c = [], [], [], []
        for kcall in range(n_calls):
            if reset_before[kcall]:
                layer.reset_states()
                twin.reset_states()
            xk = tf.constant(to_layout(xs[kcall]))
            outs.append(_to_np(layer(xk, **call)))
            full.append(_to_np(twin(xk, **call)))
            st_h.append(np.asarray(layer.states[0]))
            st_c.append(np.asarray(layer.states[1]))
        outs = [np.stack(a) for a in zip(*outs)]
        full = [np.stack(a) for a in zip(*full)]
        rec.update(x=to_layout_stacked(xs, time_major), reset_before=reset_before,
                   states_after_h=np.stack(st_h), states_after_c=np.stack(st_c))
    else:
        xin = to_layout(x)
        outs = _to_np(layer(tf.constant(xin), **call))
        full = _to_np(twin(tf.constant(xin), **call))
        rec["x"] = xin
    for i, o in enumerate(outs):
        if not np.all(np.isfinite(o)):
            raise RuntimeError(f"{framework} {case['name']}: non-finite output {i}")
        rec[f"out_{i}"] = o
    rec["seq"], rec["h"], rec["c"] = full

    weights = [np.asarray(w) for w in layer.get_weights()]
    rec["kernel"], rec["recurrent_kernel"] = weights[0], weights[1]
    if use_bias:
        rec["bias"], rec["init_bias"] = weights[2], init_w[2]
    if mask is not None:
        rec["mask"] = to_layout(mask)
    if h0 is not None:
        rec["initial_h"], rec["initial_c"] = h0, c0
    meta = {
        "name": case["name"], "description": case["description"], "framework": framework,
        "keras_version": k.__version__,
        "activation_flavour": "keras2" if framework == "tf_keras" else "keras3",
        "layer_kwargs": case["kwargs"], "dtype": dtype,
        "call": {"training": False, "mask": case["mask"], "initial_state": case["initial_state"],
                 "nan_at_masked_steps": case["nan_masked"]},
        "batch": bsz, "timesteps": t, "features": d, "units": u,
        "input_layout": "TBF" if time_major else "BTF",
        "weights_source": "initializer_bias" if case["keep_init_bias"] else "numpy_random",
        "n_outputs": len(outs), "stateful_calls": n_calls, "seed": seed,
    }
    rec["meta_json"] = np.array(json.dumps(meta, sort_keys=True))
    rec["config_json"] = np.array(json.dumps(layer.get_config(), sort_keys=True))
    return rec


def to_layout_stacked(xs, time_major):
    return np.swapaxes(xs, 1, 2) if time_major else xs


MODELS = {
    # name: (T, D or None for int tokens, builder(k) -> list of layers after Input)
    "lstm8_dense2": (6, 3, lambda k: [k.layers.LSTM(8, name="lstm"),
                                      k.layers.Dense(2, name="dense")]),
    "lstm8_hardsig_seq_dense2": (6, 3, lambda k: [
        k.layers.LSTM(8, recurrent_activation="hard_sigmoid", return_sequences=True,
                      unit_forget_bias=False, name="lstm"),
        k.layers.Dense(2, activation="tanh", name="dense")]),
    "emb_mask_lstm8_dense2": (7, None, lambda k: [
        k.layers.Embedding(20, 4, mask_zero=True, name="embedding"),
        k.layers.LSTM(8, name="lstm"), k.layers.Dense(2, name="dense")]),
}


def run_model(name, framework, outdir, save_files):
    k = _import(framework)
    t, d, build = MODELS[name]
    seed = _seed("model_" + name)
    rng = np.random.default_rng(seed)
    k.backend.clear_session()
    if d is None:  # int tokens, 0 = padding: right-padded, left-padded, holes, all padding
        inp = k.Input(shape=(t,), dtype="int32")
        x = rng.integers(1, 20, (4, t)).astype("int32")
        x[0, 4:] = 0
        x[1, :3] = 0
        x[2, [1, 3, 4]] = 0
        x[3] = 0
    else:
        inp = k.Input(shape=(t, d))
        x = rng.normal(0.0, 1.0, (3, t, d)).astype("float32")
    model = k.Sequential([inp] + build(k), name="seq_" + name)
    weights = [rng.uniform(-0.5, 0.5, np.shape(w)).astype("float32") for w in model.get_weights()]
    model.set_weights(weights)
    y = np.asarray(model.predict(x, verbose=0))
    tag = "tfk" if framework == "tf_keras" else "k3"
    rec = {f"w_{i:03d}": w for i, w in enumerate(model.get_weights())}
    rec.update(x_0=x, y_0=y, config_json=np.array(model.to_json()))
    meta = {"name": name, "framework": framework, "keras_version": k.__version__,
            "n_inputs": 1, "n_outputs": 1, "count_params": int(model.count_params()),
            "weight_names": [getattr(w, "path", None) or w.name for w in model.weights],
            "seed": seed}
    rec["meta_json"] = np.array(json.dumps(meta, sort_keys=True))
    np.savez_compressed(os.path.join(outdir, f"model_{name}.{tag}.npz"), **rec)
    if save_files:
        if framework == "keras":
            model.save(os.path.join(outdir, f"model_{name}.keras"))
        else:
            model.save(os.path.join(outdir, f"model_{name}.tfk.h5"), save_format="h5")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Write Keras golden fixtures (needs TensorFlow).")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures"))
    ap.add_argument("--only", default=None, help="substring filter on case names")
    args = ap.parse_args(argv)
    os.makedirs(os.path.join(args.out, "models"), exist_ok=True)
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")
    manifest = []
    for case in cases():
        if args.only and args.only not in case["name"]:
            continue
        for fw in case["frameworks"]:
            rec = run_case(case, fw)
            fname = ("k3_" if fw == "keras" else "") + f"lstm_{case['name']}.npz"
            np.savez_compressed(os.path.join(args.out, fname), **rec)
            meta = json.loads(str(rec["meta_json"]))
            manifest.append({key: meta[key] for key in ("name", "framework", "layer_kwargs", "call")}
                            | {"file": fname})
            print("wrote", fname, file=sys.stderr)
    if not args.only:
        with open(os.path.join(args.out, "manifest.json"), "w") as f:
            f.write('{"cases": [\n' + ",\n".join(json.dumps(m, sort_keys=True) for m in manifest)
                    + "\n]}\n")
        for name in MODELS:
            for fw in ("tf_keras", "keras"):
                run_model(name, fw, os.path.join(args.out, "models"), save_files=name == "lstm8_dense2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
