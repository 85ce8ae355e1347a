"""Activation names, Keras aliases and the integer codes the kernels switch on.

This module imports no numba: the codes live with the kernels that switch on them
(``gpulstm.kernels.codes``, re-exported here) and the layer resolves names here.  The scalar functions themselves live in ``gpulstm.kernels.activations``
(one ``@numba.jit`` function each, shared by the CPU and CUDA backends).
"""

from gpulstm.kernels.codes import CODES, CUSTOM  # noqa: F401  (the kernels' codes)

# Keras spellings that mean the same function.
ALIASES = {
    None: "linear",
    "swish": "silu",  # Keras 3 writes "silu" for both spellings
    "hard_swish": "hard_silu",
}

SUPPORTED = sorted(n for n in CODES if not n.startswith("hard_sigmoid_")) + ["hard_sigmoid", "hard_swish"]


def keras_major(keras_version):
    """The major version of a Keras version string (3 when unknown)."""
    if keras_version is None:
        return 3
    try:
        return int(str(keras_version).strip().split(".")[0])
    except ValueError:
        raise ValueError(
            "Expected a Keras version such as '2.15.0' or '3.5.0'. "
            f"Received: keras_version={keras_version!r}"
        ) from None


def canonical_name(activation, arg="activation"):
    """Normalise an activation given by name (or None) to the name Keras writes."""
    name = ALIASES.get(activation, activation)
    if isinstance(name, str):
        name = ALIASES.get(name.lower(), name.lower())
        if name == "hard_sigmoid" or name in CODES:
            return name
    raise ValueError(
        f"Unknown `{arg}`. Expected one of {SUPPORTED} or a numba-compilable "
        f"callable. Received: {arg}={activation!r}"
    )


def resolve(activation, keras_version=None, arg="activation"):
    """Map an activation (name, None or callable) to ``(code, config_name, func)``.

    ``code`` is the integer the kernels switch on (``CUSTOM`` for a callable, whose
    compiled function is then ``func``); ``config_name`` is what get_config writes.
    hard_sigmoid takes the formula of the Keras generation given by ``keras_version``.
    """
    from gpulstm._custom_objects import lookup_function

    activation = lookup_function(activation) or activation  # custom_objects by name
    if callable(activation):
        name = getattr(activation, "__name__", None) or repr(activation)
        return CUSTOM, name, activation
    name = canonical_name(activation, arg)
    if name == "hard_sigmoid":
        flavour = "hard_sigmoid_k2" if keras_major(keras_version) <= 2 else "hard_sigmoid_k3"
        return CODES[flavour], name, None
    return CODES[name], name, None
