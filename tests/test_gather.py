"""``_xp.Gather``, predict's collector of per-batch outputs: NumPy batches are copied into
a preallocated result as they arrive; anything that does not fit falls back to the chunk
list without losing or reordering rows."""
import numpy as np

from gpulstm import _xp


def _batches(rng, sizes, tail=(3, 2)):
    return [[rng.standard_normal((k,) + tail).astype(np.float32),
             rng.standard_normal((k, 4)).astype(np.float32)] for k in sizes]


def _want(batches):
    return [np.concatenate([b[i] for b in batches]) for i in range(2)]


def test_rows_known_fills_one_result_in_order():
    batches = _batches(np.random.default_rng(0), [4, 4, 3])
    g = _xp.Gather(2, np, rows=11)
    for b in batches:
        g.add(b)
    got = g.result()
    assert g._out is not None and not g._pending  # the direct path, no chunk list
    for a, w in zip(got, _want(batches)):
        np.testing.assert_array_equal(a, w)


def test_fewer_rows_than_announced_and_no_rows():
    batches = _batches(np.random.default_rng(1), [4, 2])
    g = _xp.Gather(2, np, rows=9)
    for b in batches:
        g.add(b)
    for a, w in zip(g.result(), _want(batches)):
        np.testing.assert_array_equal(a, w)
    empty = _batches(np.random.default_rng(2), [0])
    g = _xp.Gather(2, np, rows=0)
    g.add(empty[0])
    assert [a.shape for a in g.result()] == [(0, 3, 2), (0, 4)]


def test_a_batch_that_does_not_fit_falls_back_in_order():
    rng = np.random.default_rng(3)
    first = _batches(rng, [4])
    odd_dtype = [b.astype(np.float64) for b in _batches(rng, [4])[0]]
    last = _batches(rng, [2])
    for rows in (10, 5):  # a dtype change; then also more rows than announced
        g = _xp.Gather(2, np, rows=rows)
        for b in (first[0], odd_dtype, last[0]):
            g.add(b)
        got = g.result()
        want = _want([first[0], odd_dtype, last[0]])
        for a, w in zip(got, want):
            np.testing.assert_allclose(a, w, rtol=0, atol=0)
            assert a.shape == w.shape


def test_rows_unknown_keeps_the_chunk_list():
    batches = _batches(np.random.default_rng(4), [3, 3])
    g = _xp.Gather(2, np)
    for b in batches:
        g.add(b)
    assert g._out is None
    for a, w in zip(g.result(), _want(batches)):
        np.testing.assert_array_equal(a, w)
