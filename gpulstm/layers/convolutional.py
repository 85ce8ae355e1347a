"""Keras convolution layers for inference: Conv1D, Conv2D and Conv3D (im2col + one GEMM per
group)."""
import numbers

import numpy as np

from gpulstm import _xp, initializers
from gpulstm.layers._common import resolve_activation
from gpulstm.layers._spatial import (SpatialLayer, conv, data_format_of, from_channels_last,
                                     int_tuple, out_length, padding_of, spatial_dims,
                                     to_channels_last, windows)


class _Conv(SpatialLayer):
    """``activation(conv(x, kernel) + bias)``; kernel ``(*kernel_size, C_in // groups,
    filters)``, bias ``(filters,)`` as Keras stores them.

    Parameters
    ----------
    filters : int
    kernel_size, strides, dilation_rate : int or tuple of ``rank`` ints
    padding : "valid", "same" (and "causal" for Conv1D)
    data_format : "channels_last" (default) or "channels_first"
    groups : int
        Input channels and filters split into ``groups`` independent convolutions.
    activation, use_bias, *_initializer, *_regularizer, *_constraint :
        As Keras; regularizers and constraints are kept in the config only.
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, lora_rank=None,
                 lora_alpha=None, **kwargs):
        super().__init__(**kwargs)
        r = self.rank
        if isinstance(filters, bool) or not isinstance(filters, numbers.Integral) or filters <= 0:
            raise ValueError("Invalid value for argument `filters`. Expected a strictly "
                             f"positive value. Received filters={filters!r}")
        if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups <= 0:
            raise ValueError("The number of groups must be a positive integer. "
                             f"Received: groups={groups!r}.")
        if filters % groups:
            raise ValueError("The number of filters must be evenly divisible by the number of "
                             f"groups. Received: groups={groups}, filters={filters}.")
        if lora_rank:
            raise ValueError(f"gpulstm's {type(self).__name__} does not support LoRA. "
                             f"Received: lora_rank={lora_rank!r}")
        self.filters, self.groups = int(filters), int(groups)
        self.kernel_size = int_tuple(kernel_size, r, "kernel_size")
        self.strides = int_tuple(strides, r, "strides")
        self.dilation_rate = int_tuple(dilation_rate, r, "dilation_rate")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError("`strides > 1` not supported in conjunction with `dilation_rate > "
                             f"1`. Received: strides={self.strides} and "
                             f"dilation_rate={self.dilation_rate}")
        self.padding = padding_of(padding, ("valid", "same", "causal") if r == 1
                                  else ("valid", "same"))
        self.data_format = data_format_of(data_format)
        self.activation, self._act = resolve_activation(activation, self.keras_version)
        self._act_xp = getattr(self._act, "with_xp", None)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer, "kernel_initializer")
        self.bias_initializer = initializers.get(bias_initializer, "bias_initializer")
        self.kernel_regularizer, self.bias_regularizer = kernel_regularizer, bias_regularizer
        self.activity_regularizer = activity_regularizer
        self.kernel_constraint, self.bias_constraint = kernel_constraint, bias_constraint

    def _k_eff(self):
        return [d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation_rate)]

    def _channels(self, input_shape):
        return input_shape[-1] if self.data_format == "channels_last" else input_shape[1]

    def input_shape_error(self, input_shape):
        err = super().input_shape_error(input_shape)
        if err:
            return err
        c = self._channels(input_shape)
        if c is None:
            return "the channel axis of the input must be known"
        if c % self.groups:
            return (f"the number of input channels must be evenly divisible by the number of "
                    f"groups. Received groups={self.groups}, but the input has {c} channels")
        if self.built and c != self._weights[0].shape[-2] * self.groups:
            return (f"expected the channel axis of the input to have value "
                    f"{self._weights[0].shape[-2] * self.groups}, but received input with "
                    f"{c} channels")
        return self._check_output(input_shape)

    def _build(self, input_shape):
        c = int(self._channels(input_shape))
        shapes = [self.kernel_size + (c // self.groups, self.filters)]
        names = ["kernel"]
        inits = [self.kernel_initializer]
        if self.use_bias:
            shapes.append((self.filters,))
            names.append("bias")
            inits.append(self.bias_initializer)
        rng = np.random.default_rng()
        self._weights = [init(s, self.dtype, rng) for init, s in zip(inits, shapes)]
        self._weight_names = names

    def compute_output_shape(self, input_shape):
        spatial = spatial_dims(input_shape, self.data_format)
        out = tuple(out_length(n, ke, s, self.padding)
                    for n, ke, s in zip(spatial, self._k_eff(), self.strides))
        if self.data_format == "channels_last":
            return (input_shape[0],) + out + (self.filters,)
        return (input_shape[0], self.filters) + out

    def call(self, inputs, mask=None, training=None):
        xp = _xp.array_module(inputs)
        w = self._weights if xp is np else _xp.weights_on(self, xp)
        x = to_channels_last(xp.asarray(inputs, dtype=self.dtype), self.data_format)
        g, cg, fg = self.groups, x.shape[-1] // self.groups, self.filters // self.groups
        K = int(np.prod(self.kernel_size))
        args = (self.kernel_size, self.strides, self.dilation_rate, self.padding)
        if g == 1:
            y = conv(x, w[0].reshape(K * cg, self.filters), *args)
        else:
            cols = windows(x, *args)
            lead = cols.shape[:-2]                              # (B, *out)
            kernel = w[0].reshape(K, cg, self.filters)           # (K, C/g, F)
            parts = [cols[..., j * cg:(j + 1) * cg].reshape(-1, K * cg)
                     @ kernel[:, :, j * fg:(j + 1) * fg].reshape(K * cg, fg) for j in range(g)]
            y = xp.concatenate(parts, axis=-1).reshape(lead + (self.filters,))
        if self.use_bias:
            y = y + w[1]
        y = self._act(y) if self._act_xp is None else self._act_xp(y, xp)
        return from_channels_last(xp.asarray(y, dtype=self.dtype), self.data_format)

    def get_config(self):
        return {**self._base_config(), "filters": self.filters,
                "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": list(self.dilation_rate), "groups": self.groups,
                "activation": self.activation, "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": self.kernel_regularizer,
                "bias_regularizer": self.bias_regularizer,
                "activity_regularizer": self.activity_regularizer,
                "kernel_constraint": self.kernel_constraint,
                "bias_constraint": self.bias_constraint}


class Conv1D(_Conv):
    """1-D convolution over ``(batch, steps, channels)`` (Keras's ``Conv1D``); padding
    "causal" pads ``dilation_rate * (kernel_size - 1)`` zeros in front."""

    rank = 1


class Conv2D(_Conv):
    """2-D convolution over ``(batch, rows, cols, channels)`` (Keras's ``Conv2D``)."""

    rank = 2


class Conv3D(_Conv):
    """3-D convolution over ``(batch, dim1, dim2, dim3, channels)`` (Keras's ``Conv3D``)."""

    rank = 3
