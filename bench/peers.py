"""The peer runners of the benchmarks (torch.nn.LSTM / GRU, onnxruntime's LSTM / GRU, tf_keras, ...).

The code lives in ``gpulstm._peers`` so that ``gpulstm bench`` works from an
installed wheel, where this folder does not exist; this module re-exports it for
the suites and for anyone scripting their own race::

    from peers import make_runner, set_threads
    runner = make_runner("torch", case, kernel, recurrent_kernel, bias, threads=1)
    y = runner.call(x)          # x (B, T, D) float32 -> last output (B, U)

Weights are Keras's (kernel (D, 4U), recurrent_kernel (U, 4U), bias (4U,), gates
i, f, c, o); each runner maps them to its library's layout:
torch ``weight_ih = kernel.T``, ``weight_hh = recurrent_kernel.T``, ``bias_ih = bias``,
``bias_hh = 0``; onnxruntime gates permuted to i, o, f, c, ``B = [bias | 0]``, graph
``Transpose -> LSTM(layout=0) -> Squeeze``.  A GRU case (``case.cell == "gru"``) gets
Keras's GRU weights (kernel (D, 3U), recurrent_kernel (U, 3U), bias (2, 3U), gates z, r,
h, reset_after=True): torch's blocks r, z, n with ``bias_ih``/``bias_hh`` the two bias
rows; ONNX's GRU node with ``linear_before_reset=1`` in Keras's own gate order.
"""
from gpulstm._peers import (DEFAULT_PEERS, FACTORIES, PEERS, Runner, Unavailable,  # noqa: F401
                            Unsupported, gpulstm_runner, make_runner, onnx_rnn_model,
                            set_threads)
