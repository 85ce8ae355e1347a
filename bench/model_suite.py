"""The whole-model suite: which models, their inputs, and how each contender predicts.

Shared by ``scripts/make_bench_models.py`` (builds and saves the ``.keras`` files into
``bench/models/``) and ``bench/bench_models.py`` (times them).  The first seven models
are issue 13's, with exactly its shapes; the others are ours.
"""
import os
from dataclasses import dataclass

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_DIR = os.path.join(HERE, "models")


@dataclass(frozen=True)
class Inp:
    """One model input: ``(T,)`` token ids below ``vocab`` or ``(T, D)`` floats."""

    shape: tuple
    vocab: int = 0  # > 0: integer token ids
    pad: bool = False  # right-pad with id 0 (a mask_zero Embedding masks it)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    seed: int
    inputs: tuple
    issue: bool = True  # one of issue 13's seven models

    @property
    def path(self):
        return os.path.join(MODEL_DIR, self.name + ".keras")


MODELS = (
    ModelSpec("emb256_lstm128_dense256", 1, (Inp((100,), 256),)),
    ModelSpec("seq2seq_lstm256", 2, (Inp((16, 71)), Inp((59, 93)))),
    ModelSpec("emb5000_lstm128_dense1", 3, (Inp((200,), 5000),)),
    ModelSpec("lstm128_dense56", 4, (Inp((40, 56)),)),
    ModelSpec("lstm32_dense1", 5, (Inp((120, 7)),)),
    ModelSpec("lstm64_lstm32_dense16_dense2", 6, (Inp((500, 1)),)),
    ModelSpec("lstm20_dense1", 7, (Inp((10, 3)),)),
    ModelSpec("emb1000_mask_bilstm64_dense5", 8, (Inp((80,), 1000, pad=True),), issue=False),
    ModelSpec("lstm64_seq_timedist_dense8", 9, (Inp((50, 16)),), issue=False),
    ModelSpec("emb2000_mask_lstm64_lstm32_dense1", 10, (Inp((60,), 2000, pad=True),),
              issue=False),
)
BY_NAME = {m.name: m for m in MODELS}


def make_inputs(spec, n, seed=0):
    """Seeded inputs for ``spec``: a list of arrays, ``n`` sequences each."""
    rng = np.random.default_rng(seed)
    xs = []
    for inp in spec.inputs:
        if inp.vocab:
            T = inp.shape[0]
            x = rng.integers(1, inp.vocab, size=(n, T), dtype=np.int32)
            if inp.pad:  # lengths from T // 4 to T, zeros after
                lengths = rng.integers(T // 4, T + 1, size=n)
                x[np.arange(T)[None, :] >= lengths[:, None]] = 0
        else:
            x = rng.standard_normal((n,) + inp.shape).astype(np.float32)
        xs.append(x)
    return xs


def tolerance(ref):
    """The float32 tolerance: 1e-5 * max(1, max|ref|)."""
    return 1e-5 * max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)


# -- contenders ----------------------------------------------------------------------
CONTENDERS = ("gpulstm", "keras-jax")


def load(contender, path):
    """``predict(xs, batch_size) -> array`` for ``contender`` on the model file ``path``."""
    if contender == "gpulstm":
        import gpulstm

        model = gpulstm.load_model(path)
    elif contender == "keras-jax":
        os.environ.setdefault("KERAS_BACKEND", "jax")
        import keras

        if keras.backend.backend() != "jax":
            raise RuntimeError(f"keras-jax needs KERAS_BACKEND=jax; keras runs on "
                               f"{keras.backend.backend()}")
        model = keras.saving.load_model(path, compile=False)
    else:
        raise ValueError(f"Expected a contender in {CONTENDERS}. Received: {contender!r}")

    def predict(xs, batch_size):
        return np.asarray(model.predict(xs if len(xs) > 1 else xs[0], batch_size=batch_size,
                                        verbose=0))

    predict.model = model
    return predict


def version(contender):
    if contender == "gpulstm":
        import gpulstm

        return gpulstm.__version__
    import jax
    import keras

    return f"keras {keras.__version__}, jax {jax.__version__}"


def worker_env(contender, threads, env=None):
    """The environment of a contender's process at ``threads`` threads.

    OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (set on the development machines, they slow
    NumPy's BLAS) are unset here, in benchmarks only.
    """
    env = dict(os.environ if env is None else env)
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(k, None)
    n = str(threads)
    env.update(NUMBA_NUM_THREADS=n, OMP_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n,
               MKL_NUM_THREADS=n, GPULSTM_NUMPY_TIER="0", KERAS_BACKEND="jax",
               JAX_PLATFORMS="cpu", GPULSTM_BENCH_CONTENDER=contender,
               GPULSTM_BENCH_THREADS=n)
    if threads == 1:
        env["XLA_FLAGS"] = ("--xla_cpu_multi_thread_eigen=false "
                            "intra_op_parallelism_threads=1")
    else:
        env.pop("XLA_FLAGS", None)
    return env


def cores(threads):
    """The ``taskset -c`` core list every contender at ``threads`` threads is pinned to."""
    return "0" if threads == 1 else f"0-{threads - 1}"
