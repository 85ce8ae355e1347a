"""Fuzz the model-file readers: any damage must give ModelFileError, never another error.

Structure-level mutations (config keys, datasets, attributes) run in-process with
hypothesis; byte-level mutations run in a subprocess, because the HDF5 C library
can crash on damaged bytes and must not take the test run down.
"""
import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

import gpulstm.io as gio  # noqa: E402
from gpulstm.io import ModelFileError  # noqa: E402

FIX = os.path.join(os.path.dirname(__file__), "fixtures_io")
SETTINGS = settings(max_examples=15, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _has_models():
    try:
        from gpulstm.models import model_from_json  # noqa: F401
        return True
    except ImportError:
        return False


def _load(path):
    """load_model when the model surface exists, else the reader only."""
    return gio.load_model(path) if _has_models() else gio.read_model_file(path)


def _zip_with(src, dst, replace):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = replace.get(info.filename, zin.read(info.filename))
            zout.writestr(info.filename, data)


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 70), st.text(max_size=6),
                    st.just([]), st.just({}), st.just("Lambda"), st.just("LSTM"))


@SETTINGS
@given(layer=st.integers(0, 4), key=st.sampled_from(
    ["units", "class_name", "use_bias", "activation", "recurrent_activation", "mask_zero", "layer",
     "input_dim", "output_dim", "go_backwards", "return_sequences", "batch_shape", "dtype", "name"]),
    value=_VALUES, delete=st.booleans())
def test_config_mutations(tmp_path_factory, layer, key, value, delete):
    src = os.path.join(FIX, "seq_emb.k3.keras")
    with zipfile.ZipFile(src) as z:
        cfg = json.loads(z.read("config.json"))
    layers = cfg["config"]["layers"]
    target = layers[layer % len(layers)]
    holder = target if key == "class_name" else target["config"]
    if delete:
        holder.pop(key, None)
    else:
        holder[key] = value
    p = tmp_path_factory.mktemp("cfg") / "m.keras"
    _zip_with(src, p, {"config.json": json.dumps(cfg)})
    try:
        model = _load(str(p))
    except ModelFileError:
        return
    if _has_models():  # whatever loaded must run
        x = np.load(os.path.join(FIX, "seq_emb.k3.npz"))["x_0"]
        model.predict(x, verbose=0)


@SETTINGS
@given(which=st.integers(0, 100), action=st.sampled_from(["delete", "reshape", "retype", "attr"]),
       fname=st.sampled_from(["func_bidir.k3.h5", "func_bidir.tfk.h5", "seq_emb.tfk.keras"]))
def test_weight_tree_mutations(tmp_path_factory, which, action, fname):
    src = os.path.join(FIX, fname)
    d = tmp_path_factory.mktemp("w")
    if fname.endswith(".keras"):
        with zipfile.ZipFile(src) as z:
            raw = z.read("model.weights.h5")
        h5_path = str(d / "w.h5")
        open(h5_path, "wb").write(raw)
    else:
        h5_path = str(d / fname)
        open(h5_path, "wb").write(open(src, "rb").read())
    with h5py.File(h5_path, "r+") as f:
        items = []
        f.visititems(lambda n, o: items.append((n, o)) if isinstance(o, h5py.Dataset) else None)
        groups = []
        f.visititems(lambda n, o: groups.append(n) if len(o.attrs.get("weight_names", [])) else None)
        name, ds = items[which % len(items)]
        if action == "delete":
            del f[name]
        elif action == "reshape":
            data = ds[()].reshape(-1)
            del f[name]
            f[name] = np.concatenate([data, data[:1]])
        elif action == "retype":
            del f[name]
            f.create_dataset(name, data=np.array(["not a weight"], dtype=h5py.string_dtype()))
        elif groups:
            g = f[groups[which % len(groups)]]
            names = list(g.attrs["weight_names"])
            g.attrs["weight_names"] = np.array(names[::-1] + ["x"], dtype=h5py.string_dtype())
        else:
            f.attrs["junk"] = 1
    path = h5_path
    if fname.endswith(".keras"):
        path = str(d / "m.keras")
        _zip_with(src, path, {"model.weights.h5": open(h5_path, "rb").read()})
    if action == "attr" and not groups:
        _load(path)  # a harmless extra attribute must still load
        return
    with pytest.raises(ModelFileError):
        _load(path)


_BYTE_FUZZER = textwrap.dedent(r"""
    import os, random, sys, tempfile, traceback
    import gpulstm.io as gio
    from gpulstm.io import ModelFileError
    corpus, start, stop, out_dir = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    for seed in range(start, stop):
        rnd = random.Random(seed)
        src = corpus[seed % len(corpus)]
        data = bytearray(open(src, "rb").read())
        mode = rnd.choice(["flip", "truncate", "zero_run"])
        if mode == "flip":
            for _ in range(rnd.randint(1, 8)):
                data[rnd.randrange(len(data))] ^= 1 << rnd.randrange(8)
        elif mode == "truncate":
            data = data[:rnd.randrange(len(data))]
        else:
            i = rnd.randrange(len(data)); data[i:i + 64] = bytes(min(64, len(data) - i))
        path = os.path.join(out_dir, f"f{seed}" + os.path.splitext(src)[1])
        open(path, "wb").write(bytes(data))
        print("SEED", seed, flush=True)
        try:
            if path.endswith(".onnx"):
                gio.load_onnx(path)
            else:
                gio.read_model_file(path)
        except ModelFileError:
            pass
        except Exception:
            print("UNEXPECTED", seed, src, mode, flush=True)
            traceback.print_exc()
            sys.exit(3)
        os.remove(path)
""")


def test_byte_level_mutations_in_subprocess(tmp_path):
    corpus = [os.path.join(FIX, n) for n in ("seq_emb.k3.keras", "func_bidir.tfk.h5", "seq_emb.k3.h5",
                                            "func_bidir.tfk.keras")]
    try:
        import onnx  # noqa: F401
        corpus += [os.path.join(FIX, n) for n in ("onnx_lstm_head.onnx", "onnx_bigru_head.onnx")]
    except ImportError:
        pass
    start, stop, crashes = 0, 300, []
    while start < stop:
        r = subprocess.run([sys.executable, "-c", _BYTE_FUZZER, ",".join(corpus), str(start), str(stop),
                            str(tmp_path)], capture_output=True, text=True, timeout=300)
        assert "UNEXPECTED" not in r.stdout, r.stdout[-2000:] + r.stderr[-4000:]
        if r.returncode == 0:
            break
        seeds = [int(line.split()[1]) for line in r.stdout.splitlines() if line.startswith("SEED")]
        last = seeds[-1] if seeds else start
        crashes.append((last, r.returncode))  # the C library died on this input: go on after it
        start = last + 1
    # A crash inside libhdf5 cannot be caught in Python; the subprocess keeps it out of the
    # test run.  Report them, and insist they stay rare.
    assert len(crashes) <= 3, f"HDF5 crashed on seeds {crashes}"
