"""Loading a model file never draws the random initial weights it then overwrites."""
import os

import numpy as np
import pytest

pytest.importorskip("h5py")

import gpulstm  # noqa: E402
from gpulstm import initializers  # noqa: E402

FIX = os.path.join(os.path.dirname(__file__), "fixtures_io")


@pytest.fixture
def no_sampling(monkeypatch):
    """Every initializer's draw raises (the loader must not reach one)."""
    calls = []

    def forbidden(self, shape, rng):
        calls.append((type(self).__name__, shape))
        raise AssertionError(f"{type(self).__name__} drew {shape} while loading a file")

    for cls in initializers._CLASSES.values():
        monkeypatch.setattr(cls, "sample", forbidden)
    return calls


@pytest.mark.parametrize("name", ["func_bidir.k3.keras", "seq_emb.k3.keras", "func_bidir.tfk.h5"])
def test_load_model_draws_no_initial_weights(no_sampling, name):
    model = gpulstm.load_model(os.path.join(FIX, name))
    assert not no_sampling
    z = np.load(os.path.join(FIX, name.rsplit(".", 1)[0] + ".npz"))
    ref = [z[k] for k in sorted(k for k in z.files if k.startswith("w_"))]
    got = model.get_weights()
    assert len(got) == len(ref) > 0
    for a, b in zip(got, ref):
        assert a.shape == b.shape and np.array_equal(a, b)


def test_building_a_layer_still_draws(no_sampling):
    # the spy is live: a layer built outside a loader does call the initializers
    with pytest.raises(AssertionError, match="drew"):
        gpulstm.LSTM(4).build((None, 3, 2))
    assert no_sampling


def test_placeholders_are_zeros_only_inside_the_block():
    init = initializers.get("orthogonal", "recurrent_initializer")
    with initializers.placeholders():
        z = init((8, 32), "float32")
    assert z.shape == (8, 32) and z.dtype == np.float32 and not z.any()
    assert init((8, 32), "float32").any()
