"""ConvLSTM1D/2D/3D against the float64 reference (tests/naive.py): masks, states,
stateful calls, initial states, time-major input, data formats, dtypes, errors; and the
errors of the 2-D/3-D reshaping layers.  Keras's own numbers: tests/fixtures_layers
(convlstm_zoo, next_frame_video), checked by test_layers_fixtures."""
import numpy as np
import pytest

import naive
from gpulstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D, Cropping2D, UpSampling2D, ZeroPadding3D

rng = np.random.default_rng(7)


def _x(*shape):
    return rng.standard_normal(shape).astype("float32")


def _random_weights(layer):
    ws = [rng.uniform(-0.5, 0.5, w.shape).astype(layer.dtype) for w in layer.get_weights()]
    layer.set_weights(ws)
    return ws


def _ref(layer, x, ws, mask=None, h0=None, c0=None):
    seq, last, h, c = naive.conv_lstm(
        x, ws[0], ws[1], ws[2] if layer.use_bias else None, strides=layer.strides,
        padding=layer.padding, dilation_rate=layer.dilation_rate, data_format=layer.data_format,
        h0=h0, c0=c0, mask=mask, activation=layer.activation,
        recurrent_activation=layer.recurrent_activation, go_backwards=layer.go_backwards,
        zero_output_for_mask=layer.zero_output_for_mask)
    out = [seq if layer.return_sequences else last]
    return out + [h, c] if layer.return_state else out


def _close(got, ref):
    got = got if isinstance(got, list) else [got]
    assert len(got) == len(ref)
    for g, r in zip(got, ref):
        assert g.shape == r.shape
        assert np.max(np.abs(g - r)) <= 1e-5 * max(1.0, np.max(np.abs(r)))


@pytest.mark.parametrize("go_backwards,zero_output", [(False, False), (True, True)])
def test_masks_follow_keras_rnn(go_backwards, zero_output):
    layer = ConvLSTM1D(3, 3, padding="same", return_sequences=True, return_state=True,
                       go_backwards=go_backwards, zero_output_for_mask=zero_output)
    x = _x(3, 5, 6, 2)
    layer.build(x.shape)
    ws = _random_weights(layer)
    mask = np.array([[1, 0, 1, 1, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], bool)
    _close(layer(x, mask=mask), _ref(layer, x, ws, mask=mask))
    assert layer.compute_mask(x, mask)[0] is mask


def test_channels_first_strides_and_initial_state():
    layer = ConvLSTM2D(2, (2, 3), strides=(2, 1), data_format="channels_first",
                       return_state=True, recurrent_activation="hard_sigmoid")
    x = _x(2, 3, 2, 5, 6)
    layer.build(x.shape)
    ws = _random_weights(layer)
    h0, c0 = _x(2, 2, 2, 4), _x(2, 2, 2, 4)  # (B, F, rows, cols) as the output frames
    _close(layer(x, initial_state=[h0, c0]), _ref(layer, x, ws, h0=h0, c0=c0))
    assert layer.compute_output_shape((None, 3, 2, 5, 6)) == [(None, 2, 2, 4)] * 3


def test_stateful_calls_continue_and_reset():
    layer = ConvLSTM1D(2, 2, padding="same", stateful=True, return_sequences=True)
    x = _x(2, 6, 4, 3)
    layer.build(x.shape)
    ws = _random_weights(layer)
    whole = _ref(layer, x, ws)[0]
    first, second = layer(x[:, :4]), layer(x[:, 4:])
    _close([np.concatenate([first, second], axis=1)], [whole])
    assert layer.states[0].shape == (2, 4, 2)
    layer.reset_states()
    _close(layer(x), [whole])
    with pytest.raises(ValueError, match="batch"):
        layer(x[:1])


def test_time_major_float64_and_3d():
    layer = ConvLSTM3D(2, 2, padding="same", time_major=True, dtype="float64",
                       use_bias=False, return_sequences=True)
    x = rng.standard_normal((2, 3, 3, 4, 2, 1))  # (T, B, ...)
    layer.build(x.shape)
    ws = _random_weights(layer)
    out = layer(x)
    assert out.dtype == np.float64 and out.shape == (2, 3, 3, 4, 2, 2)
    ref = _ref(layer, np.swapaxes(x, 0, 1), ws)[0]
    np.testing.assert_allclose(np.swapaxes(out, 0, 1), ref, rtol=0, atol=1e-12)
    assert layer.get_config()["time_major"] is True


def test_dropout_only_in_training():
    layer = ConvLSTM1D(2, 3, dropout=0.5, recurrent_dropout=0.5, seed=3, return_sequences=True)
    x = _x(2, 4, 6, 2)
    plain = layer(x)
    _close(layer(x, training=False), [plain])
    noisy = layer(x, training=True)
    assert noisy.shape == plain.shape and not np.allclose(noisy, plain)


def test_count_params_and_config_round_trip():
    layer = ConvLSTM2D(4, 3, padding="same")
    layer.build((None, None, 6, 6, 2))
    assert layer.count_params() == 3 * 3 * 2 * 16 + 3 * 3 * 4 * 16 + 16
    bias = layer.get_weights()[2]
    assert np.all(bias[4:8] == 1) and np.all(bias[:4] == 0)  # unit_forget_bias
    again = ConvLSTM2D.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()


def test_bad_input_leaves_the_layer_as_it_was():
    layer = ConvLSTM2D(2, 3)
    with pytest.raises(ValueError, match="ndim=5"):
        layer(_x(2, 3, 5, 5))
    assert not layer.built
    with pytest.raises(ValueError, match="zero or negative"):
        layer(_x(1, 2, 2, 5, 1))
    assert not layer.built
    layer(_x(1, 2, 5, 5, 1))
    before = layer.get_weights()
    with pytest.raises(ValueError, match="channel"):
        layer(_x(1, 2, 5, 5, 3))
    with pytest.raises(ValueError, match="mask"):
        layer(_x(1, 2, 5, 5, 1), mask=np.ones((1, 3), bool))
    with pytest.raises(ValueError, match="initial_state"):
        layer(_x(1, 2, 5, 5, 1), initial_state=[np.zeros((1, 5, 5, 2))] * 2)
    for a, b in zip(before, layer.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="dilation_rate"):
        ConvLSTM1D(2, 3, strides=2, dilation_rate=2)


def test_reshaping_layers_refuse_bad_arguments():
    with pytest.raises(ValueError, match="smaller than the input"):
        Cropping2D(((2, 2), (0, 0)))(_x(1, 4, 3, 1))
    with pytest.raises(ValueError, match="interpolation"):
        UpSampling2D(interpolation="bicubic")
    with pytest.raises(ValueError, match="padding"):
        ZeroPadding3D((1, 2))
    assert ZeroPadding3D((1, 0, 2)).get_config()["padding"] == [[1, 1], [0, 0], [2, 2]]


@pytest.mark.parametrize("case", ["seq", "back_state", "last"])
def test_masks_as_tf_keras(case):
    """tf_keras's numbers for masked ConvLSTM1D calls (Keras 3.15 refuses them)."""
    import json
    import os

    z = np.load(os.path.join(os.path.dirname(__file__), "fixtures_layers",
                             "convlstm_masked_tfk.npz"), allow_pickle=False)
    layer = ConvLSTM1D.from_config(json.loads(str(z[f"{case}_config"])),
                                   keras_version=str(z["keras_version"]))
    layer.build(z["x"].shape)
    layer.set_weights([z[k] for k in sorted(z.files) if k.startswith(f"{case}_w")])
    want = [z[k] for k in sorted(z.files) if k.startswith(f"{case}_y")]
    _close(layer(z["x"], mask=z["mask"]), want)
