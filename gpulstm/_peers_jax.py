"""The JAX peer of ``gpulstm bench``: ``jax.jit`` of the input projection and a ``lax.scan``
of the LSTM or GRU (Keras's reset_after=True) step.

The thread count is an XLA start-up setting: the race starts JAX's worker with
``XLA_FLAGS`` (``gpulstm._peers.worker_env``); in a process where JAX was already
running with other settings the count is whatever it was, which the runner's notes say.
"""
import os

import numpy as np

from gpulstm._peers_base import Runner, Unavailable, Unsupported, gate_blocks


def jax_runner(case, kernel, recurrent_kernel, bias, threads):
    """``x @ W + b`` then ``lax.scan`` over the steps with ``h @ U``, under ``jax.jit``; the carry
    is (h, c) for an LSTM, (h,) for a GRU."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as exc:
        raise Unavailable(f"jax is not installed ({exc}); pip install 'jax[cpu]'") from None
    if case.mask is not None:
        raise Unsupported("the lax.scan peer runs unmasked sequences only")
    acts = {"tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid,
            "hard_sigmoid": lambda z: jnp.clip(z / 6.0 + 0.5, 0.0, 1.0)}  # Keras 3's formula
    if case.activation not in acts or case.recurrent_activation not in acts:
        raise Unsupported(f"no JAX formula for {case.activation!r}/{case.recurrent_activation!r}")
    act, ract = acts[case.activation], acts[case.recurrent_activation]
    U = case.U
    W, R = jnp.asarray(kernel), jnp.asarray(recurrent_kernel)
    G = W.shape[1]
    b = np.zeros((2, G) if case.cell == "gru" else G, np.float32) if not case.use_bias else bias
    if case.cell == "gru":  # reset_after: the input bias joins x @ W, the recurrent one h @ U
        b, b_rec = jnp.asarray(b[0]), jnp.asarray(b[1])

        def step(carry, xp_t):
            (h,) = carry
            xz, xr, xh = gate_blocks(xp_t, U)
            hz, hr, hh = gate_blocks(h @ R + b_rec, U)
            z, r = ract(xz + hz), ract(xr + hr)
            return (z * h + (1.0 - z) * act(xh + r * hh),), None
    else:
        b = jnp.asarray(b)

        def step(carry, xp_t):
            h, c = carry
            zi, zf, zc, zo = gate_blocks(xp_t + h @ R, U)
            c = ract(zf) * c + ract(zi) * act(zc)
            h = ract(zo) * act(c)
            return (h, c), None

    @jax.jit
    def forward(x, carry):
        xp = x @ W + b  # (B, T, G): one product for every step
        carry, _ = jax.lax.scan(step, carry, jnp.swapaxes(xp, 0, 1))
        return carry

    state = {}

    def reset():
        n_states = 2 if case.cell == "lstm" else 1
        state["carry"] = tuple(jnp.zeros((case.B, U), jnp.float32) for _ in range(n_states))

    reset()

    def call(x, mask=None):
        carry = forward(x, state["carry"])
        if case.stateful:
            state["carry"] = carry
        return np.asarray(carry[0])  # h; waits for the result

    flags = os.environ.get("XLA_FLAGS", "")
    note = f"XLA_FLAGS={flags!r}" if flags else "XLA default threads"
    if int(threads) == 1 and "multi_thread_eigen=false" not in flags:
        note += " (1 thread requested but not set at start-up: not honoured)"
    return Runner("jax", call, version=jax.__version__, reset=reset, notes=note)
