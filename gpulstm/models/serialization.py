"""Layer configs: the layer classes gpulstm builds, and one layer to and from its
serialized Keras dict (Keras 3 out; tf_keras 2 and Keras 3 in).

Nothing from a config is executed or imported: class names are looked up in the
user's ``custom_objects`` (see :mod:`gpulstm._custom_objects`), then in a fixed
table; Lambda layers and unknown classes are refused by name.  Whole models:
:mod:`gpulstm.models.to_config` (out) and :mod:`gpulstm.models.from_config` (in).
"""
from gpulstm import _custom_objects
from gpulstm.models.ops import OpLayer


def _layer_classes():
    from gpulstm.layers.core import Dense, Dropout, Embedding, InputLayer, Masking
    from gpulstm.layers.gru import GRU
    from gpulstm.layers.lstm import LSTM
    from gpulstm.layers.simple_rnn import SimpleRNN
    from gpulstm.layers.rnn import RNN
    from gpulstm.layers.merge import Add, Concatenate
    from gpulstm.layers.reshaping import Reshape
    from gpulstm.layers.wrappers import Bidirectional, TimeDistributed

    from gpulstm.layers.extra import EXTRA_LAYERS

    return {c.__name__: c for c in (InputLayer, Dense, Dropout, Masking, Embedding, LSTM, GRU,
                                    SimpleRNN, RNN,
                                    TimeDistributed, Bidirectional, Add, Concatenate, Reshape,
                                    *EXTRA_LAYERS)}


_CODE_LAYERS = ("Lambda", "TFOpLambda", "SlicingOpLambda", "TorchModuleWrapper",
                "JaxLayer", "FlaxLayer", "TFSMLayer")


def supported_layers():
    """Names of the Keras layer classes gpulstm can build from a config."""
    return sorted(_layer_classes())


# -- layer configs ----------------------------------------------------------------
def _strip_versions(cfg):
    if isinstance(cfg, dict):
        return {k: _strip_versions(v) for k, v in cfg.items() if k != "keras_version"}
    if isinstance(cfg, list):
        return [_strip_versions(v) for v in cfg]
    return cfg


def serialize_layer(layer):
    """``{"module", "class_name", "config", "registered_name", "build_config"}`` (Keras 3)."""
    if isinstance(layer, OpLayer):  # written back as Keras 3 wrote it
        return {"module": layer.module, "class_name": layer.op,
                "config": dict(layer.options, name=layer.name), "registered_name": layer.op}
    if _is_model(layer):  # a nested model: its whole serialization, as Keras 3 writes it
        from gpulstm.models.to_config import model_to_dict

        out = model_to_dict(layer, top=False)
        out.pop("keras_version", None)
        out["compile_config"] = {}
        return out
    out = {"module": "keras.layers", "class_name": type(layer).__name__,
           "config": _strip_versions(layer.get_config()), "registered_name": None}
    if type(layer) not in set(_layer_classes().values()):  # a user class: Keras 3's keys
        out.update(module=type(layer).__module__,
                   registered_name=_custom_objects.registered_name(type(layer)))
    shape = getattr(layer, "_build_input_shape", None)
    if type(layer).__name__ != "InputLayer" and shape is not None:
        if isinstance(shape, list):
            shape = [list(s) for s in shape]
        out["build_config"] = {"input_shape": list(shape) if isinstance(shape, tuple) else shape}
    return out


def deserialize_layer(cfg, keras_version=None):
    """A gpulstm layer from one serialized Keras layer (either dialect)."""
    if not isinstance(cfg, dict) or "class_name" not in cfg:
        raise ValueError(f"Expected a serialized layer dict with a `class_name`. "
                         f"Received: {str(cfg)[:200]}")
    cls_name = cfg["class_name"]
    conf = dict(cfg.get("config") or {})
    name = conf.get("name", cfg.get("name", "?"))
    if cls_name in ("Sequential", "Functional", "Model"):
        from gpulstm.models.from_config import model_from_config

        return model_from_config(cfg, keras_version, None)  # a nested model
    user = _custom_objects.lookup(cfg)  # custom_objects first, as Keras looks them up
    if user is not None:
        return _custom_objects.instantiate(user, cfg, conf, name, keras_version)
    classes = _layer_classes()
    from gpulstm.models import cudnn

    if cls_name in cudnn.CUDNN_CLASSES:  # Keras 2's GPU-only layers, run as LSTM / GRU
        cls_name, conf = cudnn.plain_config(cls_name, conf)
    if cls_name in _CODE_LAYERS:
        raise ValueError(
            f"Layer '{name}' is a {cls_name}, which runs Python code stored with the model. "
            "gpulstm never executes code from a config. Replace it with supported layers "
            f"({', '.join(sorted(classes))}) and load the weights again.")
    custom = _custom_objects.marks_custom(cfg)
    cls = None if custom else classes.get(cls_name)  # a custom class never falls back
    if cls is None:
        kind = "custom layer" if custom else "layer class"
        short = cls_name.split(">")[-1]
        reg = cfg.get("registered_name") or cls_name
        reg = f"registered as '{reg}', " if reg != short else ""
        raise ValueError(
            f"Unknown {kind} '{short}' ({reg}layer '{name}'). gpulstm supports: "
            f"{', '.join(sorted(classes))}. Custom layers are never imported from configs: "
            f"if '{short}' is your own layer, write it on gpulstm.Layer and pass it, e.g. "
            f"load_model(path, custom_objects={{'{short}': {short}}}) (or use "
            "gpulstm.utils.custom_object_scope).")
    try:
        return cls.from_config(conf, keras_version=keras_version)
    except TypeError as e:
        raise ValueError(f"Cannot build layer '{name}' ({cls_name}) from its config: {e}") \
            from None



def _is_model(layer):
    from gpulstm.models.functional import Model

    return isinstance(layer, Model)


def _is_functional(layer):
    from gpulstm.models.sequential import Sequential

    return _is_model(layer) and not isinstance(layer, Sequential)
