"""Fresh-process start-up costs: ``import gpulstm`` and a first LSTM call (``gpulstm bench --startup``)."""
import json
import os
import sys

import numpy as np

_STARTUP = r"""
import json, sys, time
t0 = time.perf_counter()
import gpulstm
t1 = time.perf_counter()
numba_loaded = "numba" in sys.modules
import numpy as np
x = np.random.default_rng(0).standard_normal((1, 100, 32)).astype(np.float32)
layer = gpulstm.LSTM(128, backend="cpu")
layer(x)
t2 = time.perf_counter()
from gpulstm.kernels import cpu_entry
print(json.dumps({"import_s": t1 - t0, "first_call_s": t2 - t1, "numba_on_import": numba_loaded,
                  "numba_kernels_loaded": cpu_entry.numba_loaded()}))
"""


def startup(repeats=5, timeout=300):
    """Fresh-process costs: ``import gpulstm`` and its first LSTM(128) call on (1, 100, 32).

    First with the NumPy tier off (``GPULSTM_NUMPY_TIER=0``): the first process
    fills the numba cache (``cold_first_call_s``), the medians of the next
    ``repeats`` give ``first_call_numba_s``, the warm-cache start of the numba
    kernels.  Then ``repeats`` processes as a user runs them (the tier on unless
    the environment turns it off): ``import_s`` and ``first_call_s``;
    ``first_call_tier`` says which tier ran that call ("numba/numpy" if the
    processes differed).
    """
    import subprocess

    def sample(tier_off):
        env = dict(os.environ, GPULSTM_NUMPY_TIER="0") if tier_off else None
        out = subprocess.run([sys.executable, "-c", _STARTUP], capture_output=True, text=True,
                             timeout=timeout, env=env)
        if out.returncode != 0:
            raise RuntimeError((out.stderr.strip().splitlines() or ["?"])[-1])
        return json.loads(out.stdout.strip().splitlines()[-1])

    try:
        numba_runs = [sample(True) for _ in range(repeats + 1)]
        user = [sample(False) for _ in range(repeats)]
    except RuntimeError as exc:
        return {"error": str(exc)}
    tiers = {"numba" if s.get("numba_kernels_loaded", True) else "numpy" for s in user}
    return {
        "import_s": float(np.median([s["import_s"] for s in user])),
        "first_call_s": float(np.median([s["first_call_s"] for s in user])),
        "first_call_tier": "/".join(sorted(tiers)),
        "first_call_numba_s": float(np.median([s["first_call_s"] for s in numba_runs[1:]])),
        "cold_first_call_s": numba_runs[0]["first_call_s"],
        "numba_on_import": any(s["numba_on_import"] for s in numba_runs + user),
        "samples": user,
    }
