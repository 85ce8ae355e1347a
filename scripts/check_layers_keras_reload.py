"""Developer check (needs Keras 3): every Keras 3 model of tests/fixtures_layers, loaded by
gpulstm and written back with ``to_json()``, must load in Keras 3 and give the fixture
outputs again.  (The tf_keras ``*_tfk`` models are left out: Keras 3 reloads them with its own
mask rules, e.g. merge_zoo_tfk's merges of differently masked sequences then differ.)

    KERAS_BACKEND=jax python scripts/check_layers_keras_reload.py

Exits non-zero when a model fails to load in Keras or its outputs differ.
"""
import glob
import os
import sys

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
import keras  # noqa: E402

import gpulstm  # noqa: E402

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures_layers")


def main():
    bad = 0
    for npz in sorted(glob.glob(os.path.join(HERE, "*.npz"))):
        name = npz[:-len(".npz")]
        if name.endswith("_tfk"):
            continue
        z = np.load(npz)
        xs = [z[f"x_{i}"] for i in range(sum(k.startswith("x_") for k in z.files))]
        ys = [z[f"y_{i}"] for i in range(sum(k.startswith("y_") for k in z.files))]
        model = gpulstm.load_model(name + ".keras")
        try:
            again = keras.models.model_from_json(model.to_json())
            again.set_weights(model.get_weights())
            out = again.predict(xs if len(xs) > 1 else xs[0], verbose=0)
        except Exception as e:  # report every model, then fail
            print(os.path.basename(name), "FAILED:", type(e).__name__, str(e)[:300])
            bad += 1
            continue
        out = out if isinstance(out, list) else [out]
        err = max(float(np.max(np.abs(np.asarray(a) - r))) for a, r in zip(out, ys))
        ok = err <= 1e-5 * max(1.0, max(float(np.max(np.abs(r))) for r in ys))
        bad += not ok
        print(os.path.basename(name), "max |keras - fixture| =", err, "" if ok else "MISMATCH")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
