"""Keras's calling conventions for layers users write on :class:`gpulstm.layers.Layer`.

A user layer defines some of ``build``, ``call``, ``compute_output_shape`` and
``compute_mask`` with Keras's signatures; this module calls them as Keras 3 does:

* ``layer(a, b, c=...)``: the first positional argument is the layer's ``inputs``,
  later positional ones are passed by the names ``call`` gives them (as a functional
  graph records them: tf_keras writes them as keyword arguments).
* ``build`` and ``compute_output_shape`` with one parameter get the first input's
  shape; with several, each ``<arg>_shape`` parameter gets the shape of ``call``'s
  argument ``<arg>`` (Keras 3's ``shapes_dict``).
* Without ``compute_output_shape``, output shapes come from running ``call`` on
  zeros (Keras 3 traces ``call``): an axis whose size follows an unknown input
  axis is unknown.
* ``call`` receives NumPy arrays (host copies of device activations) and gets
  ``mask`` / ``training`` only when its signature names them.
"""
import inspect

import numpy as np

from gpulstm import _xp


def is_user_layer(layer):
    """Whether ``layer`` runs through this module (it keeps the base ``__call__``)."""
    from gpulstm.layers.base import Layer

    return isinstance(layer, Layer) and type(layer).__call__ is Layer.__call__


def _params(fn):
    try:
        return inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}


def _accepts(fn, name):
    ps = _params(fn)
    return name in ps or any(p.kind is p.VAR_KEYWORD for p in ps.values())


def _arg_names(layer):
    """The names of ``call``'s positional parameters (without ``self``)."""
    return [n for n, p in _params(layer.call).items()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def bind(layer, args, kwargs):
    """``(inputs, kwargs)`` for ``layer(*args, **kwargs)``: the first positional argument is
    ``inputs``, the others go by the names ``call`` gives them."""
    kwargs = dict(kwargs)
    if not args:
        names = _arg_names(layer)
        first = names[0] if names else "inputs"
        if first not in kwargs:
            raise TypeError(f"Layer '{layer.name}' ({type(layer).__name__}) was called without "
                            "inputs. Pass the inputs as the first positional argument.")
        return kwargs.pop(first), kwargs
    names = _arg_names(layer)[1:]
    extra = args[1:]
    if len(extra) > len(names):
        raise TypeError(f"Layer '{layer.name}': `call` takes {len(names) + 1} positional "
                        f"arguments. Received: {len(args)}")
    for n, v in zip(names, extra):
        if n in kwargs:
            raise TypeError(f"Layer '{layer.name}': `call` got two values for argument '{n}'")
        kwargs[n] = v
    return args[0], kwargs


def _shape(x):
    s = getattr(x, "shape", None)
    if s is None:
        return None
    return tuple(None if d is None else int(d) for d in s)


def _struct_shape(x):
    if isinstance(x, (list, tuple)):
        return [_struct_shape(v) for v in x]
    return _shape(x)


def shapes_dict(layer, inputs, kwargs):
    """``{"<arg>_shape": shape}`` for the tensor arguments, ``call``'s first argument first."""
    names = _arg_names(layer)
    out = {f"{names[0] if names else 'inputs'}_shape": _struct_shape(inputs)}
    for k, v in kwargs.items():
        if k not in ("mask", "training") and _struct_shape(v) not in (None, []):
            out[f"{k}_shape"] = _struct_shape(v)
    return out


def _target_kwargs(layer, fn, shapes):
    """Keras 3's ``update_shapes_dict_for_target_fn``: what ``build`` /
    ``compute_output_shape`` get."""
    names = [n for n, p in _params(fn).items()
             if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if len(names) == 1:
        return {names[0]: next(iter(shapes.values()))}
    out = {}
    for n in names:
        if not n.endswith("_shape") or n not in shapes and n[:-6] not in _arg_names(layer):
            raise ValueError(
                f"For a `{fn.__name__}()` method with more than one argument, all arguments "
                "should have a `_shape` suffix and match an argument from `call()`. E.g. "
                f"`{fn.__name__}(self, foo_shape, bar_shape)`. Received: '{n}' in layer "
                f"'{layer.name}' ({type(layer).__name__})")
        if n in shapes:
            out[n] = shapes[n]
    return out


def build(layer, inputs, kwargs):
    """Build ``layer`` for these inputs (once), as Keras 3 does."""
    if layer.built:
        return
    shapes = shapes_dict(layer, inputs, kwargs)
    layer.build(**_target_kwargs(layer, layer.build, shapes))
    layer.built = True
    if getattr(layer, "_build_input_shape", None) is None:
        layer._build_input_shape = next(iter(shapes.values()))


def _overrides(layer, name):
    from gpulstm.layers.base import Layer

    return getattr(type(layer), name) is not getattr(Layer, name)


def _stand_in(x, size):
    if isinstance(x, (list, tuple)):
        return [_stand_in(v, size) for v in x]
    shape = _shape(x)
    if shape is None:
        return x
    return np.zeros(tuple(size if d is None else d for d in shape), getattr(x, "dtype", "float32"))


def output_shape(layer, inputs, kwargs):
    """The output shape(s) for symbolic inputs: ``compute_output_shape`` or a traced ``call``."""
    if _overrides(layer, "compute_output_shape"):
        shapes = shapes_dict(layer, inputs, kwargs)
        out = layer.compute_output_shape(**_target_kwargs(layer, layer.compute_output_shape,
                                                          shapes))
        return _as_shapes(out)
    probes = []
    for size in (2, 3):  # an output axis that changes with the unknown sizes is unknown
        kw = {k: (v if k in ("mask", "training") else _stand_in(v, size))
              for k, v in kwargs.items()}
        out = run(layer, _stand_in(inputs, size), kw, None, False)
        probes.append([_shape(np.asarray(o)) for o in (out if isinstance(out, (list, tuple))
                                                        else [out])])
    shapes = [tuple(a if a == b else None for a, b in zip(s2, s3)) for s2, s3 in zip(*probes)]
    return shapes[0] if len(shapes) == 1 and not isinstance(out, (list, tuple)) else shapes


def _as_shapes(out):
    if isinstance(out, (list, tuple)) and out and all(isinstance(s, (list, tuple)) or s is None
                                                      for s in out):
        return [tuple(s) for s in out]
    return tuple(out)


def _host(x):
    if isinstance(x, (list, tuple)):
        return [_host(v) for v in x]
    if isinstance(x, dict):
        return {k: _host(v) for k, v in x.items()}
    return _xp.to_host(x) if _shape(x) is not None else x


def run(layer, inputs, kwargs, mask, training):
    """Run ``layer.call`` on arrays (NumPy; device inputs are copied to the host and the
    outputs back to the input's device)."""
    first = inputs[0] if isinstance(inputs, (list, tuple)) and inputs else inputs
    xp = _xp.array_module(first)
    kw = {k: _host(v) for k, v in kwargs.items() if k not in ("mask", "training")}
    if mask is not None and _accepts(layer.call, "mask"):
        kw["mask"] = _host(mask)
    if _accepts(layer.call, "training"):
        kw["training"] = bool(training)
    out = layer.call(_host(inputs), **kw)
    if xp is np:
        return out
    if isinstance(out, (list, tuple)):
        return [_xp.to_module(o, xp) for o in out]
    return _xp.to_module(out, xp)


def call(layer, args, kwargs):
    """``layer(*args, **kwargs)``: a graph node for symbolic inputs, else the outputs."""
    from gpulstm.layers.base import Layer

    inputs, kwargs = bind(layer, args, kwargs)
    mask = kwargs.pop("mask", None)
    training = kwargs.pop("training", None)
    hook = getattr(Layer, "_symbolic_call", None)
    if hook is not None:
        res = hook(layer, inputs, mask=mask, training=training, **kwargs)
        if res is not NotImplemented:
            return res
    build(layer, inputs, kwargs)
    return run(layer, inputs, kwargs, mask, training)


def compute_mask(layer, inputs, mask):
    """Keras 3: a layer passes its input's mask on only when it supports masking."""
    return mask if layer.supports_masking else None


def from_config(cls, config):
    """``cls(**config)``; Keras's base keys (name, trainable, dtype...) that the constructor
    does not take (it has no ``**kwargs``) are set on the layer afterwards or dropped."""
    from gpulstm.layers.base import Layer, dtype_name

    if not isinstance(config, dict):
        raise ValueError(f"Expected a config dict. Received: config={config!r}")
    cfg = dict(config)
    params = _params(cls.__init__)
    late = {}
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        for k in ("name", "trainable", "dtype") + Layer._USER_NOOP_KEYS:
            if k in cfg and k not in params:
                late[k] = cfg.pop(k)
    try:
        layer = cls(**cfg)
    except TypeError as e:
        raise TypeError(f"Error when deserializing class '{cls.__name__}' using "
                        f"config={config}.\n\nException encountered: {e}") from None
    if "name" in late:
        layer.name = late["name"]
    if "trainable" in late:
        layer.trainable = late["trainable"] is not False
    if "dtype" in late:
        layer.dtype = dtype_name(late["dtype"])
    return layer
