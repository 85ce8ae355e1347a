"""Write the Keras 3 sub-model fixtures under tests/fixtures_submodel (needs keras 3, jax).

    KERAS_BACKEND=jax python scripts/make_submodel_fixtures.py --out tests/fixtures_submodel

``ocr.keras`` / ``ocr.h5``: a small model shaped like the Keras OCR captcha example
(keras-io examples/vision/captcha_ocr.py): two inputs, ``image`` and ``label``;
Conv2D -> MaxPooling2D -> Reshape -> Dense -> Dropout -> Bidirectional(LSTM) ->
Dense(softmax, name="dense2") and an endpoint layer ``ctc_loss`` that also takes the
labels.  The example's endpoint is a custom CTC layer returning its prediction input;
custom layers are another piece of work, so a built-in ``Concatenate`` (with the
reshaped labels) stands in for it: the prediction sub-model never reaches it either way.

``ocr.npz``: ``image``, ``label``, ``y`` (the whole model's output), ``y_sub`` (the
prediction sub-model ``keras.Model(model.input[0], model.get_layer("dense2").output)``,
as the example builds it), ``y_skip`` (the same model with 4 characters, its ``dense2``
weights ``skip_dense2_*``, after ``load_weights("ocr.keras", skip_mismatch=True)``: Keras 3
keeps dense2's own weights), and ``meta_json`` (the sub-model's layer names and
count_params, the structure of ``model.input``).
Tests read everything with NumPy only (``allow_pickle=False``).
"""
import argparse
import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

W, H, CHARS = 16, 8, 5


def ocr_model(rng, chars=CHARS):
    image = keras.Input((W, H, 1), name="image")
    label = keras.Input((W // 2,), name="label")
    x = layers.Conv2D(4, (3, 3), activation="relu", padding="same", name="Conv1")(image)
    x = layers.MaxPooling2D((2, 2), name="pool1")(x)
    x = layers.Reshape((W // 2, (H // 2) * 4), name="reshape")(x)
    x = layers.Dense(8, activation="relu", name="dense1")(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Bidirectional(layers.LSTM(6, return_sequences=True, dropout=0.25))(x)
    x = layers.Dense(chars, activation="softmax", name="dense2")(x)
    lab = layers.Reshape((W // 2, 1), name="label_steps")(label)
    out = layers.Concatenate(name="ctc_loss")([x, lab])  # stands in for the CTC layer
    model = keras.Model([image, label], out, name="ocr_model_v1")
    model.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype("float32")
                       for w in model.get_weights()])
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures_submodel")
    out = ap.parse_args().out
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(17)
    model = ocr_model(rng)
    image = rng.random((3, W, H, 1)).astype("float32")
    label = rng.integers(0, CHARS, (3, W // 2)).astype("float32")
    y = model.predict([image, label], verbose=0)
    sub = keras.Model(model.input[0], model.get_layer("dense2").output)
    y_sub = sub.predict(image, verbose=0)
    meta = {"keras_version": keras.__version__,
            "input_is_list": isinstance(model.input, list),
            "input_names": [t.name for t in model.inputs],
            "sub_layers": [lyr.name for lyr in sub.layers],
            "sub_count_params": int(sub.count_params()),
            "count_params": int(model.count_params())}
    model.save(os.path.join(out, "ocr.keras"))
    model.save(os.path.join(out, "ocr.h5"))
    # Keras 3's partial loading: the same model with 4 characters loads ocr.keras with
    # skip_mismatch=True; dense2 (shapes differ) keeps its own weights
    other = ocr_model(rng, chars=CHARS - 1)
    dense2_init = other.get_layer("dense2").get_weights()
    other.load_weights(os.path.join(out, "ocr.keras"), skip_mismatch=True)
    y_skip = other.predict([image, label], verbose=0)
    np.savez(os.path.join(out, "ocr.npz"), image=image, label=label, y=y, y_sub=y_sub,
             y_skip=y_skip, skip_dense2_0=dense2_init[0], skip_dense2_1=dense2_init[1],
             meta_json=np.array(json.dumps(meta)))
    print("wrote", out, meta)


if __name__ == "__main__":
    main()
