"""``gpulstm.Model``: the Keras functional model, for inference."""
import json
import logging

import numpy as np

from gpulstm import _xp
from gpulstm.dispatch import require_backend, resolve_backend
from gpulstm.layers._arrays import check_real
from gpulstm.layers.base import unique_name
from gpulstm.layers.core import InputLayer
from gpulstm.models import atomic, batches, nested
from gpulstm.models.graph import map_graph, run_graph
from gpulstm.models.symbolic import KerasTensor

log = logging.getLogger("gpulstm.models")


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _flat(x):
    """The tensors of a model's ``inputs``/``outputs`` structure, in Keras 3's order
    (a dict's values by sorted key, as ``keras.tree.flatten`` lists them)."""
    if isinstance(x, dict):
        return [x[k] for k in sorted(x)]
    return _as_list(x)


class Model:
    """A functional model: ``Model(inputs=Input(...), outputs=...)``.

    Parameters
    ----------
    inputs, outputs : KerasTensor or list of KerasTensor
    name : str, optional
        Defaults to "model", "model_1", ...
    backend : str, optional
        "auto", "cpu" or "cuda": where the LSTMs run (see :mod:`gpulstm.dispatch`).
        Resolved once per call for the whole model.

    Examples
    --------
    >>> from gpulstm import Input, LSTM, Dense, Model
    >>> inputs = Input(shape=(400, 3))
    >>> model = Model(inputs, Dense(1)(LSTM(50, activation="relu")(inputs)))
    >>> model.count_params()
    10851
    """

    _default_name = "model"

    def __init__(self, inputs=None, outputs=None, name=None, backend=None, trainable=True,
                 **kwargs):
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to Model: {kwargs}")
        if backend is not None:
            require_backend(backend)  # an unknown or unavailable backend fails now
        self.backend = backend
        self.name = name or unique_name(self._default_name)
        self.trainable = trainable
        self._keras_version = None
        if inputs is not None or outputs is not None:
            self._init_graph(inputs, outputs)

    def _init_graph(self, inputs, outputs):
        ins, outs = _flat(inputs), _flat(outputs)
        for kind, ts in (("inputs", ins), ("outputs", outs)):
            if not ts or not all(isinstance(t, KerasTensor) for t in ts):
                raise ValueError(f"Expected `{kind}` to be symbolic tensors (from `Input` and "
                                 f"layer calls). Received: {kind}={ts!r}")
        for t in ins:
            if not isinstance(t._keras_history[0], InputLayer):
                raise ValueError(f"Model inputs must come from `Input(...)`. Received: {t!r}")
        self._nested_inputs = inputs
        self._nested_outputs = outputs
        self.inputs, self.outputs = ins, outs
        self._exec_nodes, self._layers, self._nodes_by_depth = map_graph(ins, outs)
        names = [layer.name for layer in self._layers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"All layer names should be unique. Received duplicates: {dup}")
        self.built = True

    # -- structure ---------------------------------------------------------------
    @property
    def layers(self):
        """The layers, InputLayers included, in Keras's (topological) order."""
        return list(self._layers)

    def get_layer(self, name=None, index=None):
        """A layer by ``name`` (or by position ``index``)."""
        if index is not None:
            if not 0 <= index < len(self.layers) and not -len(self.layers) <= index < 0:
                raise ValueError(f"Was asked to retrieve layer at index {index} but model only "
                                 f"has {len(self.layers)} layers.")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: "
                         f"{[layer.name for layer in self.layers]}.")

    def _struct(self, attr, what):
        if not getattr(self, "built", False) or attr not in self.__dict__:
            raise AttributeError(f"The layer {self.name} has never been called and thus has "
                                 f"no defined {what}.")
        value = self.__dict__[attr]
        if nested.keras2(self) and isinstance(value, list) and len(value) == 1:
            return value[0]  # tf_keras unwraps a list of one (a model from a tf_keras file)
        return value

    @property
    def input(self):
        """The input tensor(s) in the structure the model was built with (Keras 3's
        ``model.input``): one tensor, a list (``Model([a, b], ...)``, also of one; a model
        read from a tf_keras config gives a list of one as its tensor, as tf_keras does)
        or a dict.  ``model.inputs`` is always a flat list."""
        return self._struct("_nested_inputs", "input")

    @property
    def output(self):
        """The output tensor(s) in the structure the model was built with; use them (or
        ``model.get_layer(name).output``) to build a sub-model sharing these layers:
        ``Model(model.input[0], model.get_layer("dense2").output)``."""
        return self._struct("_nested_outputs", "output")

    @property
    def input_shape(self):
        shapes = [t.shape for t in self.inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        """The output shape; a list of shapes when the model has several outputs."""
        shapes = [t.shape for t in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def input_names(self):
        return [t._keras_history[0].name for t in self.inputs]

    @property
    def output_names(self):
        return [t._keras_history[0].name for t in self.outputs]

    @property
    def stateful(self):
        return any(getattr(layer, "stateful", False) for layer in self.layers)

    def count_params(self):
        return int(sum(layer.count_params() for layer in self.layers if layer.built))

    # -- weights --------------------------------------------------------------------
    @property
    def weights(self):
        return [w for layer in self.layers for w in layer.weights]

    def get_weights(self):
        """All weights in Keras's order (layer by layer, each in its own order)."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        """Set all weights; counts, shapes and dtypes are checked before anything
        changes (bool, integer and float arrays are cast to each layer's dtype)."""
        atomic.set_weights(self, weights)

    def load_weights(self, filepath, by_name=False, skip_mismatch=False):
        """Load weights from a ``.weights.h5``, ``.h5`` or ``.keras`` file (see gpulstm.io).

        ``by_name=True`` (legacy ``.h5`` only, as in Keras 2): each layer takes the
        weights saved under its name; ``skip_mismatch=True`` (with ``by_name``) skips,
        with a warning, what does not fit.  The file's ``keras_version`` decides the
        hard_sigmoid of the layers it fills that were given none.
        """
        from gpulstm.io import load_weights

        return load_weights(self, filepath, by_name=by_name, skip_mismatch=skip_mismatch)

    def reset_states(self):
        """Zero the states of every stateful layer."""
        for layer in self.layers:
            if getattr(layer, "stateful", False):
                layer.reset_states()

    def compile(self, *args, **kwargs):
        """Accepted and ignored: gpulstm is an inference library (no training)."""
        return None

    # -- running --------------------------------------------------------------------
    def _standardize(self, x):
        if isinstance(x, dict):
            struct = self.__dict__.get("_nested_inputs")
            keys = sorted(struct) if isinstance(struct, dict) else self.input_names
            missing = [n for n in keys if n not in x]
            if missing:
                raise ValueError(f"Missing inputs {missing}. Received keys: {sorted(x)}")
            x = [x[n] for n in keys]
        if len(self.inputs) == 1:
            one = isinstance(x, (list, tuple)) and len(x) == 1 and hasattr(x[0], "shape")
            xs = [x[0]] if one else [x]
        else:
            xs = list(x) if isinstance(x, (list, tuple)) else [x]
        if len(xs) != len(self.inputs):
            raise ValueError(f"Model '{self.name}' expects {len(self.inputs)} input(s). "
                             f"Received: {len(xs)} arrays")
        out = []
        for i, (arr, t) in enumerate(zip(xs, self.inputs)):
            arr = _xp.asarray(arr)  # CuPy input stays on its device
            check_real(arr, f"input {i} of model '{self.name}'")
            want = t.shape
            ok = arr.ndim == len(want) and all(w is None or w == d
                                               for w, d in zip(want[1:], arr.shape[1:]))
            if not ok:
                raise ValueError(
                    f"Input {i} of model '{self.name}' is incompatible: expected shape="
                    f"{want}, found shape={arr.shape}.")
            dtype = np.dtype(t.dtype)
            if dtype.kind == "f":
                arr = _xp.array_module(arr).ascontiguousarray(arr, dtype=dtype)
            out.append(arr)
        n = {a.shape[0] for a in out}
        if len(n) > 1:
            raise ValueError(f"All inputs must have the same number of samples. Received: "
                             f"{[a.shape[0] for a in out]}")
        return out

    def _run(self, xs, training, backend):
        values = {id(t): x for t, x in zip(self.inputs, xs)}
        values = run_graph(self._exec_nodes, self.inputs, values, training, backend,
                           keras2=nested.keras2(self))
        return [_xp.asarray(values[id(t)]) for t in self.outputs]

    def _resolve(self, backend, data):
        name, _ = resolve_backend(backend if backend is not None else self.backend, data)
        return name

    def __call__(self, inputs, training=None, mask=None, backend=None):
        """``model(x)``: the outputs for ``x`` in one batch (CuPy for CuPy ``x``, else NumPy)."""
        if any(isinstance(t, KerasTensor) for t in _as_list(inputs)):
            return self._symbolic_call(inputs, mask, training)  # used as a layer
        xs = self._standardize(inputs)
        name = self._resolve(backend, xs[0])
        # The data moves to the backend's device once and stays there between layers.
        dev = _xp.backend_module(name)
        with atomic.states_kept_on_error(self):
            outs = self._run([_xp.to_module(a, dev) for a in xs], training, name)
        home = _xp.array_module(xs[0])
        outs = [_xp.to_module(o, home) for o in outs]
        return outs[0] if len(outs) == 1 else outs

    def _symbolic_call(self, inputs, mask=None, training=None):
        """Record this model as one node of the graph being built (a nested model)."""
        if not getattr(self, "built", False):
            raise ValueError(f"Model '{self.name}' has no graph yet, so it cannot be called "
                             "on symbolic tensors. Build it with `Model(inputs, outputs)`.")
        return nested.symbolic_call(self, inputs, mask, training)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None,
                backend=None):
        """Outputs for ``x`` (an array, or a list / dict for several inputs), in batches.

        Parameters
        ----------
        batch_size : int, optional
            Default 32. Stateful models always use the batch size they were built with
            (or, before their first call, ``batch_size``, which must then divide the
            number of samples).
        verbose : "auto", 0, 1 or 2
            1 and 2 show a tqdm progress bar; "auto" shows it only when the work takes
            over a second; 0 never.
        steps : int, optional
            Predict only the first ``steps`` batches (Keras's meaning); None: all.
        backend : str, optional
            Overrides the model's backend for this call (resolved once).

        Returns
        -------
        numpy.ndarray, or a list of them for several outputs.
        """
        return batches.predict(self, x, batch_size, verbose, steps, backend)

    def predict_on_batch(self, x, backend=None):
        """The outputs for ``x`` as one batch, in NumPy (like ``predict``)."""
        outs = self(x, training=False, backend=backend)
        if isinstance(outs, list):
            return [_xp.to_host(o) for o in outs]
        return _xp.to_host(outs)

    # -- text and config ----------------------------------------------------------
    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, layer_range=None, style=None, **kwargs):
        """Print the model's layers, output shapes and parameter counts, as Keras does.

        Parameters
        ----------
        line_length, positions :
            As in Keras (the table's width; the columns' right edges, as fractions).
        print_fn : callable, optional
            Instead of printing: Keras 3's layout calls it once with the whole table,
            tf_keras's once per line, as each Keras does.
        expand_nested, show_trainable, layer_range :
            As in Keras 3 (nested models' layers; a "Trainable" column; the rows from the
            first layer whose name matches ``layer_range[0]`` to the last matching
            ``layer_range[1]``). Keras 3's layout only.
        style : {"keras3", "tf_keras"}, optional
            The layout. None: tf_keras's for a model read from a file or JSON whose
            ``keras_version`` is below 3 (2.x), Keras 3's otherwise. "tf_keras" is the
            seed notebook's plain-text layout.
        """
        from gpulstm.models.summary import pick_style, print_keras3, summary_lines

        if pick_style(self, style) == "keras3":
            return print_keras3(self, line_length, positions, print_fn, expand_nested,
                                show_trainable, layer_range)
        for line in summary_lines(self, line_length, positions):
            (print_fn or print)(line)

    def get_config(self):
        from gpulstm.models.to_config import functional_config

        return functional_config(self)

    def to_json(self, **kwargs):
        """The Keras 3 JSON of the model (``keras.models.model_from_json`` reads it)."""
        from gpulstm.models.to_config import model_to_dict

        return json.dumps(model_to_dict(self), **kwargs)

    @classmethod
    def from_config(cls, config, keras_version=None, backend=None):
        from gpulstm.models.from_config import functional_from_config

        return functional_from_config(config, keras_version, backend, cls)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, layers={len(self.layers)}>"
