"""The JAX peer of ``gpulstm bench``: ``jax.jit`` of the input projection and a ``lax.scan``.

The thread count is an XLA start-up setting: the race starts JAX's worker with
``XLA_FLAGS`` (``gpulstm._peers.worker_env``); in a process where JAX was already
running with other settings the count is whatever it was, which the runner's notes say.
"""
import os

import numpy as np

from gpulstm._peers_base import Runner, Unavailable, Unsupported, gate_blocks


def jax_runner(case, kernel, recurrent_kernel, bias, threads):
    """``x @ W + b`` then ``lax.scan`` over the steps with ``h @ U``, under ``jax.jit``."""
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
    b = jnp.asarray(bias if case.use_bias else np.zeros(4 * U, np.float32))

    def step(carry, xp_t):
        h, c = carry
        zi, zf, zc, zo = gate_blocks(xp_t + h @ R, U)
        c = ract(zf) * c + ract(zi) * act(zc)
        h = ract(zo) * act(c)
        return (h, c), None

    @jax.jit
    def forward(x, h, c):
        xp = x @ W + b  # (B, T, 4U): one product for every step
        (h, c), _ = jax.lax.scan(step, (h, c), jnp.swapaxes(xp, 0, 1))
        return h, c

    state = {}

    def reset():
        state["hc"] = (jnp.zeros((case.B, U), jnp.float32), jnp.zeros((case.B, U), jnp.float32))

    reset()

    def call(x, mask=None):
        h, c = forward(x, *state["hc"])
        if case.stateful:
            state["hc"] = (h, c)
        return np.asarray(h)  # waits for the result

    flags = os.environ.get("XLA_FLAGS", "")
    note = f"XLA_FLAGS={flags!r}" if flags else "XLA default threads"
    if int(threads) == 1 and "multi_thread_eigen=false" not in flags:
        note += " (1 thread requested but not set at start-up: not honoured)"
    return Runner("jax", call, version=jax.__version__, reset=reset, notes=note)
