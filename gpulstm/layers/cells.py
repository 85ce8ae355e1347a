"""``LSTMCell``, ``GRUCell``, ``SimpleRNNCell`` and ``StackedRNNCells``: the cells that
``gpulstm.RNN`` runs.

A cell holds its Keras arguments (checked, with Keras's defaults) in the matching gpulstm
layer, ``cell.layer`` (LSTM, GRU or SimpleRNN): an ``RNN`` over the cell runs that layer's
machinery and kernels, so ``RNN(LSTMCell(u))`` gives ``LSTM(u)``'s numbers.
"""
from gpulstm.layers.gru import GRU
from gpulstm.layers.lstm import LSTM
from gpulstm.layers.simple_rnn import SimpleRNN
from gpulstm.layers.user_cell import is_user_cell

# The config keys of each cell, as Keras 3 writes them (tf_keras 2 adds `implementation`).
_BASE = ("name", "trainable", "dtype", "units", "activation", "use_bias", "kernel_initializer",
         "recurrent_initializer", "bias_initializer", "kernel_regularizer",
         "recurrent_regularizer", "bias_regularizer", "kernel_constraint",
         "recurrent_constraint", "bias_constraint", "dropout", "recurrent_dropout", "seed")


# keywords every cell takes besides its own arguments (tf_keras 2 writes `implementation`)
_OWN = ("dtype", "trainable", "implementation", "keras_version")


class _Cell:
    """One recurrent cell: its arguments live in ``self.layer`` (see the module doc)."""

    _layer_class = None
    _keys = ()  # the config keys: the cell's Keras arguments, passed on to the layer

    def __init__(self, units, **kwargs):
        from gpulstm.layers.base import to_snake_case, unique_name

        name = kwargs.pop("name", None) or unique_name(to_snake_case(type(self).__name__))
        kwargs.pop("build_config", None)
        extra = {k: v for k, v in kwargs.items() if k not in self._keys and k not in _OWN}
        if extra:
            raise TypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: "
                            f"{extra}")
        self.layer = self._layer_class(units, name=name, **kwargs)

    @property
    def name(self):
        return self.layer.name

    @property
    def units(self):
        return self.layer.units

    @property
    def state_size(self):
        """The size of each state, as Keras gives it: ``[U, U]`` (LSTM) or ``U``."""
        n = self.layer._n_states
        return [self.units] * n if n > 1 else self.units

    def get_config(self):
        """The cell's config in the Keras 3 dialect."""
        cfg = LSTM.get_config(self.layer)
        if isinstance(self.layer, GRU):
            cfg["reset_after"] = self.layer.reset_after
        cfg = {k: cfg[k] for k in self._keys if k in cfg}
        if self.layer.keras_version is not None:
            cfg["keras_version"] = self.layer.keras_version
        return cfg

    @classmethod
    def from_config(cls, config, keras_version=None):
        """A cell from a tf_keras 2 or Keras 3 cell config."""
        if not isinstance(config, dict) or "units" not in config:
            raise ValueError(f"A {cls.__name__} config needs `units`. Received: "
                             f"config={config!r}")
        cfg = dict(config)
        own = cfg.pop("keras_version", None)
        cfg["keras_version"] = keras_version if keras_version is not None else own
        return cls(**cfg)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, units={self.units}>"


class LSTMCell(_Cell):
    """``keras.layers.LSTMCell(units, activation="tanh", recurrent_activation="sigmoid",
    use_bias=True, kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
    bias_initializer="zeros", unit_forget_bias=True, kernel_regularizer=None, ...,
    dropout=0.0, recurrent_dropout=0.0, seed=None)``: the arguments of
    :class:`gpulstm.LSTM` that a cell has, with the same (Keras's) defaults."""

    _layer_class = LSTM
    _keys = _BASE + ("recurrent_activation", "unit_forget_bias")


class GRUCell(_Cell):
    """``keras.layers.GRUCell(units, activation="tanh", recurrent_activation="sigmoid", ...,
    reset_after=True, seed=None)``: the arguments of :class:`gpulstm.GRU` that a cell has,
    with the same (Keras's) defaults."""

    _layer_class = GRU
    _keys = _BASE + ("recurrent_activation", "reset_after")


class SimpleRNNCell(_Cell):
    """``keras.layers.SimpleRNNCell(units, activation="tanh", use_bias=True, ...,
    dropout=0.0, recurrent_dropout=0.0, seed=None)``: the arguments of
    :class:`gpulstm.SimpleRNN` that a cell has, with the same (Keras's) defaults."""

    _layer_class = SimpleRNN
    _keys = _BASE



CELLS = {c.__name__: c for c in (LSTMCell, GRUCell, SimpleRNNCell)}


class StackedRNNCells:
    """``keras.layers.StackedRNNCells``: cells run one above the other at every step (the
    output of one is the input of the next); states per cell, in order."""

    def __init__(self, cells, name=None, trainable=True, dtype=None, **kwargs):
        kwargs.pop("build_config", None)
        kv = kwargs.pop("keras_version", None)
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to StackedRNNCells: {kwargs}")
        cells = [deserialize_cell(c, kv) if isinstance(c, dict) else c for c in cells]
        if not cells or not all(isinstance(c, _Cell) or is_user_cell(c) for c in cells):
            raise ValueError("StackedRNNCells expects a non-empty list of gpulstm cells "
                             "(LSTMCell, GRUCell, SimpleRNNCell, or cells written on "
                             f"gpulstm.Layer). Received: cells={cells!r}")
        from gpulstm.layers.base import to_snake_case, unique_name

        self.cells = cells
        self.name = name or unique_name(to_snake_case("StackedRNNCells"))
        self.trainable = trainable
        self.dtype = dtype

    @property
    def state_size(self):
        return [c.state_size for c in self.cells]

    def get_config(self):
        from gpulstm.layers._common import dtype_policy

        first = self.cells[0]
        return {"name": self.name, "trainable": self.trainable,
                "dtype": dtype_policy(first.layer.dtype if isinstance(first, _Cell)
                                      else first.dtype),
                "cells": [serialize_cell(c) for c in self.cells]}

    @classmethod
    def from_config(cls, config, keras_version=None):
        if not isinstance(config, dict) or not isinstance(config.get("cells"), list):
            raise ValueError(f"A StackedRNNCells config needs a `cells` list. Received: "
                             f"config={config!r}")
        return cls(**dict(config, keras_version=keras_version))


def serialize_cell(cell):
    """``{"module", "class_name", "config", "registered_name"}`` of a cell (Keras 3)."""
    if is_user_cell(cell):
        from gpulstm.models.serialization import serialize_layer

        out = serialize_layer(cell)
        out.pop("build_config", None)
        return out
    cfg = cell.get_config()
    cfg.pop("keras_version", None)
    return {"module": "keras.layers", "class_name": type(cell).__name__, "config": cfg,
            "registered_name": None}


def deserialize_cell(cfg, keras_version=None):
    """A cell (or StackedRNNCells) from its serialized config; other classes are refused
    by name (a cell class is never imported from a config)."""
    if not isinstance(cfg, dict) or not isinstance(cfg.get("class_name"), str):
        raise ValueError(f"Expected a serialized cell dict with a `class_name`. "
                         f"Received: {str(cfg)[:200]}")
    from gpulstm import _custom_objects

    cls_name = cfg["class_name"]
    conf = dict(cfg.get("config") or {})
    user = _custom_objects.lookup(cfg)  # custom_objects first, as Keras looks them up
    if user is not None:
        return _custom_objects.instantiate(user, cfg, conf, conf.get("name", "?"), keras_version)
    custom = _custom_objects.marks_custom(cfg)
    cls = None if custom else (StackedRNNCells if cls_name == "StackedRNNCells"
                               else CELLS.get(cls_name))
    if cls is None:
        short = cls_name.split(">")[-1]
        raise ValueError(
            f"Unknown RNN cell class '{cls_name}'. gpulstm's RNN runs the cells "
            f"{', '.join(sorted(CELLS))}, StackedRNNCells, and cells written on gpulstm.Layer "
            "passed by name: load_model(path, custom_objects={"
            f"'{short}': {short}}}) (or gpulstm.utils.custom_object_scope). A cell class is "
            "never imported from a config.")
    try:
        return cls.from_config(conf, keras_version=keras_version)
    except TypeError as e:
        raise ValueError(f"Cannot build cell '{conf.get('name', '?')}' ({cls_name}) from its "
                         f"config: {e}") from None
