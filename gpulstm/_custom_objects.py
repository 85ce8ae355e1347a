"""User classes that model configs may name: ``custom_objects``, scopes and registrations.

Keras's lookup, kept exactly: a class name in a config resolves first in the
innermost :func:`custom_object_scope`, then among classes registered with
:func:`register_keras_serializable`, then in the ``custom_objects`` passed to the
loading call, and only then among gpulstm's built-in layers.  The key is the
config's ``registered_name`` (Keras 3: ``"package>ClassName"``, or the class name;
``null`` for Keras's built-ins, which custom objects therefore cannot replace) or,
in a Keras 2 config without that key, the ``class_name`` (which custom objects may
replace, as tf_keras allows).  The plain class name is also accepted for a
registered name, so ``custom_objects={"CTCLayer": CTCLayer}`` loads a file that
named ``"ocr>CTCLayer"``.

Nothing here imports a module named by a config: only classes the user handed
over are ever returned.
"""
import contextlib
import threading

_GLOBAL = {}  # registered name -> class (register_keras_serializable)
_local = threading.local()  # .scopes: list of dicts; .passed: the loading call's dict


def _scopes():
    if not hasattr(_local, "scopes"):
        _local.scopes = []
    return _local.scopes


def _check_dict(custom_objects, arg="custom_objects"):
    if custom_objects is None:
        return {}
    if not isinstance(custom_objects, dict) or not all(isinstance(k, str)
                                                       for k in custom_objects):
        raise TypeError(f"Expected `{arg}` to be a dict mapping names (str) to classes. "
                        f"Received: {arg}={custom_objects!r}")
    return dict(custom_objects)


class CustomObjectScope:
    """Make classes visible to loading by name inside a ``with`` block (thread-local).

    >>> with gpulstm.utils.custom_object_scope({"CTCLayer": CTCLayer}):
    ...     model = gpulstm.load_model("ocr.keras")

    Several dicts may be given; later ones win. Scopes nest; the innermost wins.
    """

    def __init__(self, *custom_objects):
        self.custom_objects = {}
        for d in custom_objects:
            self.custom_objects.update(_check_dict(d))

    def __enter__(self):
        merged = dict(_scopes()[-1]) if _scopes() else {}
        merged.update(self.custom_objects)
        _scopes().append(merged)
        return self

    def __exit__(self, *exc):
        _scopes().pop()
        return False


custom_object_scope = CustomObjectScope


def get_custom_objects():
    """The global dict of registered custom objects (as Keras's; edits are kept)."""
    return _GLOBAL


def register_keras_serializable(package="Custom", name=None):
    """Class decorator: register ``cls`` under ``"package>name"`` (name: the class name)."""
    def decorate(cls):
        key = f"{package}>{name or cls.__name__}"
        if key in _GLOBAL and _GLOBAL[key] is not cls:
            raise ValueError(f"{key} has already been registered to {_GLOBAL[key]}")
        _GLOBAL[key] = cls
        cls._registered_name = key
        return cls
    return decorate


def registered_name(cls):
    """The name a config records for ``cls`` (Keras 3's ``registered_name``)."""
    for key, value in _GLOBAL.items():
        if value is cls:
            return key
    return cls.__name__


@contextlib.contextmanager
def passed(custom_objects):
    """The ``custom_objects`` argument of a loading call, for the lookups inside it."""
    objs = _check_dict(custom_objects)
    before = getattr(_local, "passed", None)
    _local.passed = {**(before or {}), **objs}
    try:
        yield
    finally:
        _local.passed = before


def lookup(cfg):
    """The user class a serialized layer names, or None (then: a built-in or unknown).

    ``cfg``: the layer's ``{"class_name", "registered_name"?, ...}`` dict.
    """
    cls_name = cfg.get("class_name")
    key = cfg.get("registered_name", cls_name)
    if not isinstance(key, str):
        return None  # a Keras 3 built-in: registered_name null
    keys = [key] + ([key.split(">", 1)[1]] if ">" in key else [])
    if isinstance(cls_name, str) and cls_name not in keys:
        keys.append(cls_name)
    for table in ((_scopes() or [{}])[-1], _GLOBAL, getattr(_local, "passed", None) or {}):
        for k in keys:
            if k in table:
                return table[k]
    return None


def lookup_function(identifier):
    """The user function an activation name (or Keras 3's ``{"class_name": "function"}``
    dict) names, or None. As in Keras, custom objects come before built-in names."""
    if isinstance(identifier, dict) and identifier.get("class_name") == "function":
        keys = [identifier.get("config"), identifier.get("registered_name")]
    elif isinstance(identifier, str):
        keys = [identifier]
    else:
        return None
    for table in ((_scopes() or [{}])[-1], _GLOBAL, getattr(_local, "passed", None) or {}):
        for k in keys:
            fn = table.get(k) if isinstance(k, str) else None
            if callable(fn) and not isinstance(fn, type):
                return fn
    return None


def marks_custom(cfg):
    """Whether a serialized layer says it is a user class (Keras 3: a ``registered_name``
    other than its class name, or a ``module`` outside Keras; Keras 3 legacy ``.h5``: a
    ``"package>Name"`` class name). Keras 2 configs cannot say so."""
    cls_name, reg = cfg.get("class_name"), cfg.get("registered_name")
    if isinstance(cls_name, str) and ">" in cls_name:
        return True
    if isinstance(reg, str) and reg != cls_name:
        return True
    if "module" not in cfg:
        return False
    module = cfg.get("module")
    return not isinstance(module, str) or module.split(".")[0] not in ("keras", "tf_keras",
                                                                       "builtins")


def known_names():
    """Every name a lookup could resolve now (for error messages)."""
    return sorted(set((_scopes() or [{}])[-1]) | set(_GLOBAL)
                  | set(getattr(_local, "passed", None) or {}))


def instantiate(cls, cfg, conf, name, keras_version):
    """The layer ``cls`` (what :func:`lookup` found for ``cfg``) builds from its config
    ``conf``; ``name`` is the layer's name for messages."""
    import inspect

    from gpulstm.layers.base import Layer

    cls_name = cfg["class_name"]
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise ValueError(
            f"custom_objects['{cls_name.split('>')[-1]}'] (for layer '{name}') must be a "
            f"subclass of gpulstm.Layer. Received: {cls!r}. gpulstm runs layers written on "
            "gpulstm.Layer with a NumPy `call`; a Keras class cannot run here.")
    try:
        params = inspect.signature(cls.from_config).parameters
        kw = {"keras_version": keras_version} if "keras_version" in params else {}
        return cls.from_config(conf, **kw)
    except TypeError as e:
        raise ValueError(f"Cannot build layer '{name}' ({cls.__name__}) from its config: "
                         f"{e}") from None
