"""Import a PyTorch ``nn.LSTM``, ``nn.GRU`` or ``nn.RNN`` (module, state dict or saved file) as a gpulstm Model.

PyTorch and Keras share the LSTM gate order (i, f, g/c, o), so the conversion is a
transpose and a bias sum per layer and direction::

    kernel = weight_ih.T        # (D, 4H)
    recurrent_kernel = weight_hh.T   # (H, 4H)
    bias = bias_ih + bias_hh    # (4H,)

A GRU's gate blocks are reordered from torch's r, z, n to Keras's z, r, h and its
two biases kept apart: torch's GRU is Keras's ``reset_after=True`` GRU, whose bias
is ``[bias_ih; bias_hh]`` (2, 3H).  An ``nn.RNN`` is Keras's SimpleRNN (one block,
``bias_ih + bias_hh``, activation = ``nonlinearity``).  A state dict says which it
is by its shapes (``weight_hh`` is (4H, H) for an LSTM, (3H, H) for a GRU, (H, H)
for an RNN), except an RNN's nonlinearity, which a state dict does not hold.

State-dict files are read with ``safetensors`` or ``torch.load(weights_only=True)``
(a restricted unpickler that only rebuilds tensors); nothing else is unpickled.
"""
import os
import re

import numpy as np

from .common import ModelFileError, UnsupportedModelError

# cell -> (torch module, gate blocks per direction, torch's blocks in Keras gate order)
CELLS = {"lstm": ("nn.LSTM", 4, (0, 1, 2, 3)),  # i, f, g, o in both
         "gru": ("nn.GRU", 3, (1, 0, 2)),       # Keras z, r, h = torch (r, z, n)[1, 0, 2]
         "rnn": ("nn.RNN", 1, (0,))}            # Keras SimpleRNN
_MODES = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn", "RNN_RELU": "rnn"}  # nn.RNNBase.mode -> cell
_KEY = re.compile(r"^(?P<prefix>.*?)(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)"
                  r"_l(?P<layer>\d+)(?P<rev>_reverse)?$")


def _to_numpy(value, key, source):
    if hasattr(value, "detach"):  # a torch tensor; float() keeps bf16/half readable
        value = value.detach().cpu().float().numpy()
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise ModelFileError(source, key, f"expected a numeric tensor, found dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise ModelFileError(source, key, "tensor contains NaN or infinity")
    return arr


def _load_file(path):
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise ImportError("Reading .safetensors needs `pip install safetensors`.") from None
        try:
            return load_file(path)
        except Exception as e:  # safetensors raises its own SafetensorError
            raise ModelFileError(path, None, f"not a readable safetensors file ({e})") from None
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"Reading {path!r} needs PyTorch (`pip install torch==2.13.0`), or save the state "
            "dict with safetensors instead.") from None
    try:
        # weights_only=True: only tensors and plain containers, never arbitrary objects.
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelFileError(path, None, f"not a readable weights-only torch file ({e})") from None


def _hparam(given, inferred, name, source):
    if given is None:
        return inferred
    if inferred is not None and given != inferred:
        raise ValueError(f"Expected {name}={inferred} (from the weights of {source}). "
                         f"Received: {name}={given!r}")
    return given


def _cell_of(w_hh, source, key):
    """The cell a ``weight_hh`` of shape (gates * H, H) belongs to."""
    shape = tuple(np.shape(w_hh))
    for cell, (_, gates, _) in CELLS.items():
        if len(shape) == 2 and shape[0] == gates * shape[1] and shape[1] > 0:
            return cell
    raise ModelFileError(source, key, f"shape {shape} is none of nn.LSTM's (4H, H), nn.GRU's (3H, H) "
                         "or nn.RNN's (H, H)")


def _keras_bias(cell, b_ih, b_hh, order):
    if b_ih is None:
        return None
    if cell == "gru":  # reset_after: [input bias; recurrent bias]
        return np.stack([b_ih[order], b_hh[order]])
    return (b_ih.astype(np.float64) + b_hh).astype(np.float32)[order]


def torch_rnn_weights(module_or_state_dict, *, input_size=None, hidden_size=None, num_layers=None,
                      bidirectional=None, prefix=None):
    """Keras weights per layer and direction from an ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` or its state dict.

    Returns
    -------
    layers : list of list of [kernel, recurrent_kernel, bias or None]
        ``layers[k][d]`` for layer k and direction d (0 forward, 1 reverse), in Keras's
        layout and gate order (a GRU's bias is (2, 3H)).
    hparams : dict
        cell ("lstm", "gru" or "rnn"), input_size, hidden_size, num_layers, bidirectional,
        batch_first and nonlinearity (module only).
    """
    source = "state dict"
    extra = {}
    obj = module_or_state_dict
    mode_cell = None
    if isinstance(obj, (str, os.PathLike)):
        source = os.fspath(obj)
        obj = _load_file(obj)
    elif hasattr(obj, "state_dict") and hasattr(obj, "hidden_size"):
        mode = getattr(obj, "mode", "LSTM")
        mode_cell = _MODES.get(mode)
        if mode_cell is None:
            raise UnsupportedModelError(type(obj).__name__, "mode", f"only nn.LSTM, nn.GRU and nn.RNN are "
                                        f"supported, got mode={mode!r}")
        if getattr(obj, "proj_size", 0):
            raise UnsupportedModelError(
                "nn.LSTM", "proj_size", f"proj_size={obj.proj_size} (LSTMP) has no Keras equivalent")
        for name in ("input_size", "hidden_size", "num_layers", "bidirectional", "batch_first"):
            extra[name] = getattr(obj, name)
        if mode_cell == "rnn":
            extra["nonlinearity"] = "relu" if mode == "RNN_RELU" else "tanh"
        source = CELLS[mode_cell][0]
        obj = obj.state_dict()
    if not hasattr(obj, "items"):
        raise ValueError("Expected an nn.LSTM, nn.GRU or nn.RNN module, a state dict or a .safetensors/.pt path. "
                         f"Received: {type(module_or_state_dict).__name__}")
    found = {}
    for key, value in obj.items():
        m = _KEY.match(str(key))
        if not m:
            continue
        if prefix is not None and m["prefix"] != prefix:
            continue
        found.setdefault(m["prefix"], {})[(m["kind"], int(m["layer"]), bool(m["rev"]))] = (key, value)
    if not found:
        raise ModelFileError(source, None, "no nn.LSTM, nn.GRU or nn.RNN weights (weight_ih_l0, ...) found")
    if len(found) > 1:
        raise ValueError(f"Expected one recurrent module in the state dict. Received several prefixes: "
                         f"{sorted(found)}; pass prefix= to pick one.")
    (pfx, entries), = found.items()
    if any(kind == "weight_hr" for kind, _, _ in entries):
        raise UnsupportedModelError(source, pfx + "weight_hr_l0",
                                    "proj_size > 0 (LSTMP) has no Keras equivalent")
    n_layers = 1 + max(layer for _, layer, _ in entries)
    bidir = any(rev for _, _, rev in entries)
    w_hh = entries.get(("weight_hh", 0, False))
    w_ih = entries.get(("weight_ih", 0, False))
    if w_hh is None or w_ih is None:
        raise ModelFileError(source, pfx + "weight_hh_l0", "missing weight")
    cell = _cell_of(w_hh[1], source, w_hh[0])
    if mode_cell is not None and cell != mode_cell:
        raise ModelFileError(source, w_hh[0], f"module is {CELLS[mode_cell][0]} but its weights are "
                             f"{CELLS[cell][0]}'s")
    torch_name, gates, blocks = CELLS[cell]
    hp = {
        "num_layers": _hparam(num_layers, n_layers, "num_layers", source),
        "bidirectional": _hparam(bidirectional, bidir, "bidirectional", source),
        "hidden_size": _hparam(hidden_size, int(np.shape(w_hh[1])[-1]), "hidden_size", source),
        "input_size": _hparam(input_size, int(np.shape(w_ih[1])[-1]), "input_size", source),
    }
    for k in ("num_layers", "bidirectional", "hidden_size", "input_size"):
        if k in extra and extra[k] != hp[k]:
            raise ModelFileError(source, k, f"module says {extra[k]} but its weights say {hp[k]}")
    hp["batch_first"] = extra.get("batch_first")
    hp["nonlinearity"] = extra.get("nonlinearity")
    hp["cell"] = cell
    H, dirs = hp["hidden_size"], 2 if hp["bidirectional"] else 1
    G = gates * H
    order = np.concatenate([np.arange(j * H, (j + 1) * H) for j in blocks])
    has_bias = ("bias_ih", 0, False) in entries
    layers = []
    for k in range(hp["num_layers"]):
        D = hp["input_size"] if k == 0 else dirs * H
        per_dir = []
        for d in range(dirs):
            rev = d == 1
            sfx = f"_l{k}" + ("_reverse" if rev else "")

            def get(kind, shape, required=True):
                e = entries.get((kind, k, rev))
                if e is None:
                    if required:
                        raise ModelFileError(source, f"{pfx}{kind}{sfx}", "missing weight")
                    return None
                arr = _to_numpy(e[1], e[0], source)
                if arr.shape != shape:
                    raise ModelFileError(source, e[0], f"expected shape {shape}, found {arr.shape}")
                return arr

            w_ih_k = get("weight_ih", (G, D))
            w_hh_k = get("weight_hh", (G, H))
            b_ih = get("bias_ih", (G,), has_bias)
            b_hh = get("bias_hh", (G,), has_bias)
            # kernel is (D, G), recurrent_kernel (H, G), in Keras's gate order.
            per_dir.append([np.ascontiguousarray(w_ih_k[order].T), np.ascontiguousarray(w_hh_k[order].T),
                            _keras_bias(cell, b_ih, b_hh, order)])
        layers.append(per_dir)
    used = {(kind, k, rev) for kind, k, rev in entries}
    expected = {(kind, k, d == 1) for kind in ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if has_bias else ())
                for k in range(hp["num_layers"]) for d in range(dirs)}
    if used - expected:
        kind, k, rev = sorted(used - expected)[0]
        raise ModelFileError(source, f"{pfx}{kind}_l{k}{'_reverse' if rev else ''}",
                             f"weight does not fit the {torch_name[3:]}'s hyperparameters")
    return layers, hp


def _setting(name, module_value, given, default):
    """A setting the module fixes (``module_value``, None for a state dict) or the caller gives."""
    if module_value is not None and given is not None and given != module_value:
        raise ValueError(f"Expected {name}={module_value!r} (the module's). Received: {name}={given!r}")
    return module_value if given is None and module_value is not None else default if given is None else given


def from_torch(module_or_state_dict, *, input_size=None, hidden_size=None, num_layers=None,
               bidirectional=None, batch_first=None, return_state=False, prefix=None, backend=None,
               nonlinearity=None):
    """Build a gpulstm ``Model`` equal to a PyTorch ``nn.LSTM``, ``nn.GRU`` or ``nn.RNN`` at inference.

    Parameters
    ----------
    module_or_state_dict : torch.nn.LSTM, torch.nn.GRU or torch.nn.RNN, mapping or path
        The module, its ``state_dict()`` (torch tensors or NumPy arrays), or a
        ``.safetensors`` / ``.pt`` file holding the state dict (an LSTM's
        ``weight_hh`` is (4H, H), a GRU's (3H, H), an RNN's (H, H): the shapes say which).
    input_size, hidden_size, num_layers, bidirectional : optional
        Checked against the weights (inferred from them when omitted).
    batch_first : bool, optional
        Input/output layout of ``predict``: (B, T, F) when True, else (T, B, F).
        Taken from the module, else PyTorch's default False.
    return_state : bool
        ``predict`` returns ``[output, h_n, c_n]`` (LSTM) or ``[output, h_n]`` (GRU),
        the states each (num_layers * dirs, B, H) in torch's order
        ``layer * dirs + direction``.
    prefix : str, optional
        Key prefix (e.g. ``"encoder."``) when the state dict holds several modules.
    backend : str, optional
        "auto", "cpu" or "cuda" for the model and its layers (GRU and SimpleRNN: the CPU so far).
    nonlinearity : {"tanh", "relu"}, optional
        An ``nn.RNN``'s activation: taken from the module; a state dict does not hold it
        (default "tanh", as torch's).

    Returns
    -------
    TorchRNNModel
        A functional :class:`gpulstm.Model`: ``Input(shape=(None, input_size))``
        then, per torch layer, ``LSTM(hidden_size, return_sequences=True)`` (or
        ``GRU(hidden_size, return_sequences=True)``, Keras's ``reset_after=True``, or
        ``SimpleRNN(hidden_size, activation=nonlinearity, return_sequences=True)``)
        or ``Bidirectional(...)`` of it with ``merge_mode="concat"``, so
        ``summary()``, ``get_weights()`` and ``to_json()`` are Keras's.
        ``model.predict(x)`` (any ``batch_size``; ``initial_state=(h_0, c_0)``
        for an LSTM, ``h_0`` for a GRU or an RNN, optional) gives the module's ``output`` in
        torch's layout; see :class:`~gpulstm.io.torch_model.TorchRNNModel`.

    Notes
    -----
    An LSTM keeps one bias per direction in Keras (``bias_ih + bias_hh``), so its
    ``count_params()`` is 4H smaller per layer and direction than torch's
    ``sum(p.numel() for p in module.parameters())`` (an RNN's H smaller); a GRU keeps
    both (the same count as torch).  Dropout between layers is an inference no-op and is ignored.
    """
    layers, hp = torch_rnn_weights(module_or_state_dict, input_size=input_size, hidden_size=hidden_size,
                                    num_layers=num_layers, bidirectional=bidirectional, prefix=prefix)
    bf = _setting("batch_first", hp["batch_first"], batch_first, False)
    act = None
    if hp["cell"] == "rnn":
        act = _setting("nonlinearity", hp["nonlinearity"], nonlinearity, "tanh")
        if act not in ("tanh", "relu"):
            raise ValueError(f"Expected nonlinearity 'tanh' or 'relu' (nn.RNN's). Received: {act!r}")
    elif nonlinearity is not None:
        raise ValueError(f"nonlinearity is an nn.RNN setting; these weights are {hp['cell'].upper()}'s. "
                         f"Received: nonlinearity={nonlinearity!r}")
    from .torch_model import build_torch_model

    return build_torch_model(layers, cell=hp["cell"], batch_first=bool(bf), activation=act,
                             return_state=bool(return_state), backend=backend, name=f"torch_{hp['cell']}")
