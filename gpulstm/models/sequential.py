"""``gpulstm.Sequential``: a linear stack of layers."""
from gpulstm.layers._arrays import check_real, restore_on_error
from gpulstm.layers.base import Layer
from gpulstm.layers.core import InputLayer
from gpulstm.models.batches import predict_args
from gpulstm.models.functional import Model
from gpulstm.models.symbolic import KerasTensor, input_tensor


class Sequential(Model):
    """A linear stack of layers: ``Sequential([Input((10, 3)), LSTM(64), Dense(1)])``.

    Parameters
    ----------
    layers : list, optional
        Layers (and optionally a leading ``Input``/``InputLayer``) to ``add`` in order.
    name : str, optional
        Defaults to "sequential", "sequential_1", ...
    backend : str, optional
        See :class:`Model`.

    Notes
    -----
    Without an ``Input`` the model is built on its first call / ``predict`` from the
    data's shape (batch axis left free).
    """

    _default_name = "sequential"

    def __init__(self, layers=None, name=None, backend=None, trainable=True):
        super().__init__(name=name, backend=backend, trainable=trainable)
        self._stack = []
        self._input_layer = None
        self._output = None
        self.built = False
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        """Append a layer (or set the input with ``Input(...)`` / ``InputLayer``)."""
        if isinstance(layer, KerasTensor):
            layer = layer._keras_history[0]
            if not isinstance(layer, InputLayer):
                raise ValueError("Only `Input(...)` tensors can be added to a Sequential model. "
                                 f"Received: {layer!r}")
        if isinstance(layer, InputLayer):
            if self._input_layer is not None or self._stack:
                raise ValueError("An `Input` can only be the first entry of a Sequential "
                                 f"model. Received: InputLayer '{layer.name}' after "
                                 f"{[lyr.name for lyr in self._stack]}")
            self._input_layer = layer
            self._output = input_tensor(layer)
            return
        if not isinstance(layer, (Layer, Model)) or layer is self:
            raise ValueError("Only gpulstm layers and models can be added to a Sequential "
                             f"model. Received: {layer!r} (of type {type(layer).__name__})")
        if any(lyr.name == layer.name for lyr in self._stack):
            raise ValueError(f"All layers added to a Sequential model should have unique "
                             f"names. Name '{layer.name}' is already the name of a layer in "
                             "this model.")
        if self._output is None and not self._stack and isinstance(layer, Model) \
                and getattr(layer, "built", False) and len(layer.inputs) == 1:
            # Like Keras: a built model added first gives the stack its input.
            first = layer.inputs[0]
            self._input_layer = InputLayer(batch_shape=first.shape, dtype=first.dtype)
            self._output = input_tensor(self._input_layer)
        self._stack.append(layer)
        if self._output is not None:
            try:
                self._connect(layer)
            except ValueError:
                if self._stack and self._stack[-1] is layer:
                    self._stack.pop()
                raise

    def _connect(self, layer):
        out = layer(self._output)
        if isinstance(out, list) and len(out) == 1:  # a nested Model(i, [o])
            out = out[0]
        if not isinstance(out, KerasTensor):
            self._stack.pop()
            raise ValueError(
                "All layers in a Sequential model should have a single output tensor. "
                f"Received: layer '{layer.name}' with {len(out)} outputs. Use the functional "
                "`Model` API for layers that return several tensors.")
        self._output = out
        self._init_graph(input_tensor(self._input_layer), out)

    def build(self, input_shape):
        """Build from ``input_shape`` (batch axis included, e.g. ``(None, 10, 3)``)."""
        if self.built:
            return
        if self._input_layer is None:
            self._input_layer = InputLayer(batch_shape=tuple(input_shape))
        self._output = input_tensor(self._input_layer)
        layers, self._stack = self._stack, []
        for layer in layers:
            self._stack.append(layer)
            self._connect(layer)

    def _ensure_built(self, x):
        if self.built:
            return
        if not self._stack:
            raise ValueError(f"Sequential model '{self.name}' has no layers yet; `add` some.")
        from gpulstm import _xp

        arr = _xp.asarray(x[0] if isinstance(x, (list, tuple)) and hasattr(x[0], "shape") else x)
        check_real(arr, f"the input of model '{self.name}'")
        dtype = "int32" if arr.dtype.kind in "iu" else "float32"
        with restore_on_error(self, *self._stack):  # a failed build changes nothing
            self._input_layer = InputLayer(batch_shape=(None,) + arr.shape[1:], dtype=dtype)
            self.build(None)

    @property
    def layers(self):
        """The added layers (no InputLayer, as in Keras)."""
        return list(self._stack)

    @property
    def input_layer(self):
        return self._input_layer

    def __call__(self, inputs, training=None, mask=None, backend=None):
        leaves = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        if not any(isinstance(t, KerasTensor) for t in leaves):
            self._ensure_built(inputs)
        return super().__call__(inputs, training=training, mask=mask, backend=backend)

    def _symbolic_call(self, inputs, mask=None, training=None):
        if not self.built:  # Keras builds a Sequential on its first symbolic call
            one = inputs[0] if isinstance(inputs, (list, tuple)) and len(inputs) == 1 \
                else inputs
            if not self._stack or not isinstance(one, KerasTensor):
                raise ValueError(f"Sequential model '{self.name}' expects one input tensor "
                                 "and at least one layer. Received: inputs="
                                 f"{inputs!r}, layers={[lyr.name for lyr in self._stack]}")
            if self._input_layer is None:
                self._input_layer = InputLayer(batch_shape=(None,) + one.shape[1:],
                                               dtype=one.dtype)
            self.build(None)
        return super()._symbolic_call(inputs, mask, training)

    def pop(self, rebuild=True):
        """Remove the last layer and return it (the outputs move to the layer before).

        ``rebuild`` is accepted for Keras's signature; the graph is always updated.

        Raises
        ------
        TypeError, ValueError
            When there are no layers (Keras's "There are no layers in the model.").
        """
        if not self._stack:
            raise _NoLayersError("There are no layers in the model.")
        layer = self._stack.pop()
        if not self.built:
            return layer
        if not self._stack:
            self._output = input_tensor(self._input_layer)
            self.built = False
            self.inputs = self.outputs = None
            return layer
        last = self._stack[-1]
        self._output = next(t for n in self._exec_nodes if n.layer is last for t in n.outputs)
        self._init_graph(input_tensor(self._input_layer), self._output)
        return layer

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None,
                backend=None):
        """Outputs for ``x``, in batches; builds the model on first use if needed.

        Parameters
        ----------
        x : array_like
            (B, T, ...) samples (a list / dict for several inputs).
        batch_size : int, optional
            Default 32. Stateful models always use the batch size they were built with.
        verbose : "auto", 0, 1 or 2
            1 and 2 show a tqdm progress bar (left on screen when done, as Keras's is);
            "auto" shows it only when the work takes over a second; 0 never.
        steps : int, optional
            Predict only the first ``steps`` batches (Keras's meaning); None: all.
        callbacks :
            Accepted for Keras compatibility and ignored.
        backend : str, optional
            Overrides the model's backend for this call.

        Returns
        -------
        numpy.ndarray, or a list of them for several outputs.
        """
        predict_args(batch_size, steps, verbose)  # refused before the model builds
        self._ensure_built(x)
        return super().predict(x, batch_size, verbose, steps, callbacks, backend)

    def _require_built(self, what):
        if not self.built:
            raise ValueError(f"Sequential model '{self.name}' has not been built yet, so "
                             f"{what} is unknown. Add an `Input(shape=...)` first, or call "
                             "`model.build(input_shape)` or `model.predict(x)`.")

    @property
    def output_shape(self):
        self._require_built("its output shape")
        return super().output_shape

    def count_params(self):
        self._require_built("its parameter count")
        return super().count_params()

    def get_config(self):
        from gpulstm.models.to_config import sequential_config

        return sequential_config(self)


class _NoLayersError(ValueError, TypeError):
    """``pop()`` on an empty Sequential: tf_keras raises TypeError, gpulstm ValueError."""
