"""The seed notebook's LSTM checks, run with gpulstm instead of TensorFlow.

Prints the output shapes of the five return_sequences / return_state combinations
of LSTM(50) on a (2, 400, 3) input and the parameter counts 10800 / 10600.
"""
import numpy as np

import gpulstm


def main():
    x = np.random.default_rng(0).normal(size=(2, 400, 3)).astype("float32")
    cases = [
        ("LSTM(50)", {}),
        ("LSTM(50, use_bias=False)", {"use_bias": False}),
        ("LSTM(50, return_sequences=True)", {"return_sequences": True}),
        ("LSTM(50, return_state=True)", {"return_state": True}),
        ("LSTM(50, return_state=True, return_sequences=True)",
         {"return_state": True, "return_sequences": True}),
    ]
    for label, kwargs in cases:
        layer = gpulstm.LSTM(50, **kwargs)
        out = layer(x)
        shapes = [o.shape for o in out] if isinstance(out, list) else out.shape
        print(f"{label:52s} output shape {shapes}  params {layer.count_params()}"
              f"  (backend: {layer.last_backend})")


if __name__ == "__main__":
    main()
