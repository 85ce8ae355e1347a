"""Keras's convolutional LSTMs for inference: ConvLSTM1D, ConvLSTM2D, ConvLSTM3D.

An LSTM whose products are convolutions (Keras gate order i, f, c, o)::

    z = conv(x_t, kernel, strides, padding, dilation) + bias + conv_same(h_tm1, recurrent_kernel)
    i, f, o = ract(z_i), ract(z_f), ract(z_o);  c = f * c_tm1 + i * act(z_c);  h = o * act(c)

``kernel`` is ``(*kernel_size, C, 4F)``, ``recurrent_kernel`` ``(*kernel_size, F, 4F)``,
``bias`` ``(4F,)`` as Keras stores them; the recurrent convolution always has stride 1 and
"same" padding (Keras's ``recurrent_conv``).  The input convolution of every timestep is
one im2col + GEMM before the recurrence; each step adds one im2col + GEMM of the state.
Masks, ``go_backwards``, states and ``zero_output_for_mask`` follow Keras's ``RNN``.
Computes with the array module of its input (NumPy, or CuPy on the CUDA backend).
"""
import contextlib
import threading

import numpy as np

from gpulstm import _xp, initializers
from gpulstm.layers import _lstm_checks as checks
from gpulstm.layers._arrays import check_real
from gpulstm.layers._checked import CheckedLayer
from gpulstm.layers._common import recurrent_weight_config, resolve_activation, shape_str
from gpulstm.layers._spatial import (conv, data_format_of, from_channels_last, int_tuple,
                                     out_length, padding_of, to_channels_last)

_NOOP = ("implementation", "input_dim")


def _recurrence(xp, z_x, rk2d, h, c, mask, act, ract, kernel_size, go_backwards,
                zero_output_for_mask, return_sequences, rec_masks=None):
    """Run the steps on the input projections ``z_x`` (B, T, *S, 4F), channels last.

    Returns ``(output, h, c)``; ``output`` is (B, T, *S, F) in processing order or the last
    step's output.  ``rec_masks`` (4, B, *S, F): recurrent dropout per gate.
    """
    T, F = z_x.shape[1], h.shape[-1]
    ones, same = (1,) * len(kernel_size), "same"
    seq = []
    prev = xp.zeros_like(h)
    for t in range(T - 1, -1, -1) if go_backwards else range(T):
        if rec_masks is None:
            z = z_x[:, t] + conv(h, rk2d, kernel_size, ones, ones, same)
        else:
            z = z_x[:, t] + xp.concatenate(
                [conv(h * rec_masks[g], rk2d[:, g * F:(g + 1) * F], kernel_size, ones, ones,
                      same) for g in range(4)], axis=-1)
        i, f, o = ract(z[..., :F]), ract(z[..., F:2 * F]), ract(z[..., 3 * F:])
        c_new = f * c + i * act(z[..., 2 * F:3 * F])
        h_new = o * act(c_new)
        if mask is None:
            h, c, out = h_new, c_new, h_new
        else:  # a masked step keeps the states and repeats the last output (or zeros)
            keep = mask[:, t].reshape((-1,) + (1,) * (h.ndim - 1))
            h, c = xp.where(keep, h_new, h), xp.where(keep, c_new, c)
            out = xp.where(keep, h_new, 0.0 if zero_output_for_mask else prev)
        prev = out
        if return_sequences:
            seq.append(out)
    return (xp.stack(seq, axis=1) if return_sequences else prev), h, c


class _ConvLSTM(CheckedLayer):
    """Base of ConvLSTM1D/2D/3D: input (batch, time, *spatial, channels), or
    (batch, time, channels, *spatial) with ``data_format="channels_first"``.

    Arguments as Keras's ``ConvLSTM{rank}D``; regularizers and constraints are kept in the
    config only, ``dropout`` / ``recurrent_dropout`` apply with ``training=True`` only (one
    mask per gate, shared over time, from the layer's seeded NumPy generator), ``unroll``
    changes nothing.  ``time_major`` (tf_keras) takes (time, batch, ...) input.
    ``recurrent_activation`` defaults to Keras 3's "sigmoid" (tf_keras's default is
    "hard_sigmoid", which its configs name explicitly).
    """

    rank = 2
    call_kwargs = ("initial_state",)

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0,
                 recurrent_dropout=0.0, seed=None, return_sequences=False, return_state=False,
                 go_backwards=False, stateful=False, unroll=False, zero_output_for_mask=False,
                 time_major=False, **kwargs):
        extra = {k: kwargs.pop(k) for k in _NOOP if k in kwargs}
        super().__init__(**kwargs)
        self._noop.update(extra)
        r = self.rank
        self.filters = checks.positive_int(filters, "filters")
        self.kernel_size = int_tuple(kernel_size, r, "kernel_size")
        self.strides = int_tuple(strides, r, "strides")
        self.dilation_rate = int_tuple(dilation_rate, r, "dilation_rate")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError("Specifying `strides > 1` is not compatible with `dilation_rate > "
                             "1`. Please provide `strides=1` or `dilation_rate=1`. Received: "
                             f"strides={self.strides} and dilation_rate={self.dilation_rate}")
        self.padding = padding_of(padding)
        self.data_format = data_format_of(data_format)
        self.activation, self._act = resolve_activation(activation, self.keras_version)
        self.recurrent_activation, self._ract = resolve_activation(
            recurrent_activation, self.keras_version, "recurrent_activation")
        self.use_bias, self.unit_forget_bias = bool(use_bias), bool(unit_forget_bias)
        self.kernel_initializer = initializers.get(kernel_initializer, "kernel_initializer")
        self.recurrent_initializer = initializers.get(recurrent_initializer,
                                                      "recurrent_initializer")
        self.bias_initializer = initializers.get(bias_initializer, "bias_initializer")
        self.kernel_regularizer, self.recurrent_regularizer = (kernel_regularizer,
                                                               recurrent_regularizer)
        self.bias_regularizer, self.activity_regularizer = bias_regularizer, activity_regularizer
        self.kernel_constraint, self.recurrent_constraint = (kernel_constraint,
                                                             recurrent_constraint)
        self.bias_constraint = bias_constraint
        self.dropout = checks.rate(dropout, "dropout")
        self.recurrent_dropout = checks.rate(recurrent_dropout, "recurrent_dropout")
        self.seed = seed
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards, self.stateful = bool(go_backwards), bool(stateful)
        self.unroll, self.zero_output_for_mask = bool(unroll), bool(zero_output_for_mask)
        self.time_major = bool(time_major)
        self._rng = np.random.default_rng(seed)
        self._states = None
        self._lock = threading.RLock()

    # -- shapes ---------------------------------------------------------------------
    def _split(self, shape):
        """``(batch, time, spatial, channels)`` of an input shape."""
        b, t = (shape[1], shape[0]) if self.time_major else (shape[0], shape[1])
        if self.data_format == "channels_last":
            return b, t, tuple(shape[2:-1]), shape[-1]
        return b, t, tuple(shape[3:]), shape[2]

    def _out_spatial(self, spatial):
        return tuple(out_length(n, d * (k - 1) + 1, s, self.padding) for n, k, s, d in
                     zip(spatial, self.kernel_size, self.strides, self.dilation_rate))

    def _frame(self, batch, spatial):
        """The shape of one output frame / state in the layer's data format."""
        if self.data_format == "channels_last":
            return (batch,) + spatial + (self.filters,)
        return (batch, self.filters) + spatial

    def input_shape_error(self, input_shape):
        want = self.rank + 3
        if len(input_shape) != want:
            return f"expected ndim={want}, found ndim={len(input_shape)}"
        _, _, spatial, c = self._split(input_shape)
        if c is None or None in spatial:
            return ("ConvLSTM layers need static spatial dimensions and a known channel axis "
                    f"(received {shape_str(input_shape)})")
        if self.built and c != self._weights[0].shape[-2]:
            return (f"expected the channel axis of the input to have value "
                    f"{self._weights[0].shape[-2]}, but received input with {c} channels")
        for n, o in zip(spatial, self._out_spatial(spatial)):
            if o <= 0:
                return (f"computed output size would be zero or negative: an axis of length "
                        f"{n} is shorter than the kernel window. Full shape received: "
                        f"{shape_str(input_shape)}")
        return None

    def compute_output_shape(self, input_shape):
        b, t, spatial, _ = self._split(tuple(input_shape))
        frame = self._frame(b, self._out_spatial(spatial))
        if self.return_sequences:
            out = (t, b) + frame[1:] if self.time_major else (b, t) + frame[1:]
        else:
            out = frame
        return [out, frame, frame] if self.return_state else out

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0] if mask else None
        out = mask if self.return_sequences else None
        return [out, None, None] if self.return_state else out

    # -- weights --------------------------------------------------------------------
    def build(self, input_shape):
        if isinstance(input_shape, list) and input_shape and isinstance(input_shape[0],
                                                                         (list, tuple)):
            input_shape = input_shape[0]  # [x, h0, c0] shapes: the input's
        super().build(input_shape)

    def _build(self, input_shape):
        c = int(self._split(input_shape)[3])
        F, rng, dt = self.filters, self._rng, self.dtype
        weights = [self.kernel_initializer(self.kernel_size + (c, 4 * F), dt, rng),
                   self.recurrent_initializer(self.kernel_size + (F, 4 * F), dt, rng)]
        names = ["kernel", "recurrent_kernel"]
        if self.use_bias:
            if self.unit_forget_bias:  # Keras: concat(init(F), ones(F), init(2F))
                bias = np.concatenate([self.bias_initializer((F,), dt, rng), np.ones(F, dt),
                                       self.bias_initializer((2 * F,), dt, rng)])
            else:
                bias = self.bias_initializer((4 * F,), dt, rng)
            weights.append(bias)
            names.append("bias")
        self._weights = [np.ascontiguousarray(w, dtype=dt) for w in weights]
        self._weight_names = names
        self._states = None

    # -- states ---------------------------------------------------------------------
    @property
    def states(self):
        """``[h, c]`` of a stateful layer in its data format (None before the first call)."""
        if self._states is None:
            return [None, None]
        return [_xp.to_host(from_channels_last(s, self.data_format)).copy()
                for s in self._states]

    def reset_states(self, states=None):
        """Zero the states of a stateful layer, or set them to ``states=[h, c]``."""
        if not self.stateful:
            raise AttributeError("Layer must be stateful to reset its states.")
        if states is None:
            if self._states is not None:
                self._states = [np.zeros_like(_xp.to_host(s)) for s in self._states]
            return
        want = None if self._states is None else self._states[0].shape
        new = self._checked_states(states, np, want, "states")
        self._states = new

    def reset_state(self, states=None):
        """Alias of ``reset_states`` (Keras 3 name)."""
        self.reset_states(states)

    def _checked_states(self, states, xp, want, arg):
        """``[h, c]`` as channels-last arrays of the layer's dtype, checked against ``want``
        (channels-last (B, *S, F)) when known."""
        if not isinstance(states, (list, tuple)) or len(states) != 2:
            raise ValueError(f"Layer '{self.name}' expects `{arg}` to be a list of 2 arrays "
                             f"[h, c]. Received: {arg} of type {type(states).__name__}")
        out = []
        for i, s in enumerate(states):
            arr = _xp.asarray(s)
            check_real(arr, f"`{arg}[{i}]` of layer '{self.name}'",
                              "Pass float arrays shaped like the layer's output frames")
            arr = to_channels_last(xp.asarray(arr, dtype=self.dtype), self.data_format)
            ok = arr.ndim == self.rank + 2 and arr.shape[-1] == self.filters
            if want is not None:
                ok = ok and tuple(arr.shape) == tuple(want)
            if not ok:
                shown = "?" if want is None else shape_str(from_channels_last(
                    np.empty(want, "int8"), self.data_format).shape)
                raise ValueError(f"Layer '{self.name}' expects each entry of `{arg}` to have "
                                 f"shape {shown} (one output frame). Received: {arg}[{i}] with "
                                 f"shape {tuple(xp.asarray(s).shape)}")
            out.append(xp.ascontiguousarray(arr))
        return out

    # -- call -----------------------------------------------------------------------
    def call(self, inputs, mask=None, training=None, initial_state=None):
        if isinstance(inputs, (list, tuple)):  # tf_keras style [x, h0, c0]
            inputs, initial_state = inputs[0], list(inputs[1:]) or initial_state
        xp = _xp.array_module(inputs)
        x = xp.asarray(inputs, dtype=self.dtype)
        err = self.input_shape_error(x.shape)
        if err:
            raise ValueError(f"Input 0 of layer '{self.name}' is incompatible with the layer: "
                             f"{err}. Full shape received: {shape_str(x.shape)}")
        if self.time_major:
            x = xp.swapaxes(x, 0, 1)
        B, T = x.shape[:2]
        x = to_channels_last(x.reshape((B * T,) + x.shape[2:]), self.data_format)
        frame = (B,) + self._out_spatial(x.shape[1:-1]) + (self.filters,)
        if mask is not None:
            m = check_real(_xp.asarray(mask), f"the mask of layer '{self.name}'")
            if tuple(m.shape) != ((T, B) if self.time_major else (B, T)):
                raise ValueError(f"Layer '{self.name}' expected a mask of shape (batch, time) = "
                                 f"{(B, T)}. Received: mask with shape {tuple(m.shape)}")
            mask = xp.asarray(m, dtype=bool)
            mask = mask.T if self.time_major else mask
        if initial_state is not None:
            initial_state = self._checked_states(initial_state, xp, frame, "initial_state")
        w = self._weights if xp is np else _xp.weights_on(self, xp)
        drop = bool(training) and (self.dropout > 0 or self.recurrent_dropout > 0)
        with self._lock if self.stateful or drop else contextlib.nullcontext():
            states = initial_state or self._start_states(frame, xp)
            z_x, rec_masks = self._projections(x, w, B, T, xp, drop)
            F4 = 4 * self.filters
            out, h, c = _recurrence(
                xp, z_x, w[1].reshape(-1, F4), states[0], states[1], mask,
                self._gate(self._act, xp), self._gate(self._ract, xp), self.kernel_size,
                self.go_backwards, self.zero_output_for_mask, self.return_sequences, rec_masks)
            if self.stateful:
                self._states = [h, c]
        out = xp.asarray(out, dtype=self.dtype)
        if self.return_sequences:
            out = from_channels_last(out.reshape((B * T,) + out.shape[2:]), self.data_format)
            out = out.reshape((B, T) + out.shape[1:])
            out = xp.swapaxes(out, 0, 1) if self.time_major else out
        else:
            out = from_channels_last(out, self.data_format)
        if self.return_state:
            return [out] + [from_channels_last(s, self.data_format).copy() for s in (h, c)]
        return out

    @staticmethod
    def _gate(fn, xp):
        with_xp = getattr(fn, "with_xp", None)
        return fn if with_xp is None else (lambda v: with_xp(v, xp))

    def _start_states(self, frame, xp):
        if self.stateful and self._states is not None:
            if tuple(self._states[0].shape) != frame:
                raise ValueError(
                    f"Layer '{self.name}' is stateful and its states have shape "
                    f"{tuple(self._states[0].shape)} (channels last). Received: input whose "
                    f"output frames have shape {frame}. Call `reset_states()` after rebuilding, "
                    "or feed batches of the same size.")
            return [_xp.to_module(s, xp) for s in self._states]
        zeros = xp.zeros(frame, dtype=self.dtype)
        return [zeros, zeros]

    def _projections(self, x, w, B, T, xp, drop):
        """``(z_x (B, T, *S, 4F), rec_masks)``: every step's input convolution plus bias,
        one im2col + GEMM (four with input dropout, one per gate's mask)."""
        F, args = self.filters, (self.kernel_size, self.strides, self.dilation_rate,
                                 self.padding)
        kernel = w[0].reshape(-1, 4 * F)
        rec_masks = None
        if drop and self.dropout > 0:
            keep = self._keep(self.dropout, (4, B, 1) + x.shape[1:], xp)
            xs = x.reshape((B, T) + x.shape[1:])
            z = xp.concatenate([conv((xs * keep[g]).reshape(x.shape), kernel[:, g * F:(g + 1) * F],
                                     *args) for g in range(4)], axis=-1)
        else:
            z = conv(x, kernel, *args)
        if self.use_bias:
            z += w[2]
        z = z.reshape((B, T) + z.shape[1:])
        if drop and self.recurrent_dropout > 0:
            rec_masks = self._keep(self.recurrent_dropout, (4, B) + z.shape[2:-1] + (F,), xp)
        return z, rec_masks

    def _keep(self, rate, shape, xp):
        if rate <= 0:
            return xp.ones(shape, self.dtype)
        keep = (self._rng.random(shape) >= rate).astype(self.dtype) / (1.0 - rate)
        return xp.asarray(keep)

    # -- config ---------------------------------------------------------------------
    def get_config(self):
        cfg = {**self._base_config(), "return_sequences": self.return_sequences,
               "return_state": self.return_state, "go_backwards": self.go_backwards,
               "stateful": self.stateful, "unroll": self.unroll,
               "zero_output_for_mask": self.zero_output_for_mask, "filters": self.filters,
               "kernel_size": list(self.kernel_size), "strides": list(self.strides),
               "padding": self.padding, "data_format": self.data_format,
               "dilation_rate": list(self.dilation_rate), "activation": self.activation,
               "recurrent_activation": self.recurrent_activation, "use_bias": self.use_bias,
               **recurrent_weight_config(self)}
        if self.time_major:
            cfg["time_major"] = True
        return cfg


class ConvLSTM1D(_ConvLSTM):
    """1-D convolutional LSTM over ``(batch, time, steps, channels)``."""

    rank = 1


class ConvLSTM2D(_ConvLSTM):
    """2-D convolutional LSTM over ``(batch, time, rows, cols, channels)`` (Keras's
    ``ConvLSTM2D``, e.g. next-frame video prediction)."""

    rank = 2


class ConvLSTM3D(_ConvLSTM):
    """3-D convolutional LSTM over ``(batch, time, dim1, dim2, dim3, channels)``."""

    rank = 3
