"""The seed notebook, run with gpulstm instead of TensorFlow.

Prints the output shapes of the five return_sequences / return_state combinations
of LSTM(50) with their parameter counts (10800 / 10600), the summaries of the
seed's three models (10851, 10600, 17538 parameters) and one prediction.
"""
import numpy as np

import gpulstm
from gpulstm import Dense, Input, LSTM, Model, Sequential, TimeDistributed


def main():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 400, 3)).astype("float32")
    cases = [
        ("LSTM(50)", {}),
        ("LSTM(50, use_bias=False)", {"use_bias": False}),
        ("LSTM(50, return_sequences=True)", {"return_sequences": True}),
        ("LSTM(50, return_state=True)", {"return_state": True}),
        ("LSTM(50, return_state=True, return_sequences=True)",
         {"return_state": True, "return_sequences": True}),
    ]
    for label, kwargs in cases:
        layer = LSTM(50, **kwargs)
        out = layer(x)
        shapes = [o.shape for o in out] if isinstance(out, list) else out.shape
        print(f"{label:52s} output shape {shapes}  params {layer.count_params()}"
              f"  (backend: {layer.last_backend})")

    inputs = Input(shape=(400, 3))
    outputs = Dense(1)(LSTM(50, activation="relu")(inputs))
    model = Model(inputs=inputs, outputs=outputs)
    model.summary()
    print("prediction for 2 sequences:", model.predict(x, verbose=0).ravel())

    inputs = Input(shape=(10, 3))
    nobias = Model(inputs=inputs, outputs=LSTM(50, use_bias=False)(inputs))
    print("Output shape", nobias.output_shape, "params", nobias.count_params())

    seq = Sequential()
    seq.add(Input(shape=(10, 3)))
    seq.add(LSTM(64, return_sequences=True))
    seq.add(TimeDistributed(Dense(2)))
    seq.compile(optimizer="adam", loss="mse")
    seq.summary()
    print("gpulstm", gpulstm.__version__)


if __name__ == "__main__":
    main()
