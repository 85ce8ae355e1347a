"""``gpulstm summary FILE``: describe a saved model without building it."""
import numpy as np


def _layer_rows(config, sizes):
    layers = (config.get("config") or {}).get("layers") or []
    rows = []
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        cfg = layer.get("config") if isinstance(layer.get("config"), dict) else {}
        name = cfg.get("name", "?")
        cls = layer.get("class_name", "?")
        detail = ""
        if cls in ("LSTM", "GRU", "SimpleRNN"):
            detail = f"units={cfg.get('units')}"
            if cfg.get("return_sequences"):
                detail += ", return_sequences"
        elif cls == "RNN":
            detail = f"cell={(cfg.get('cell') or {}).get('class_name')}"
            if cfg.get("return_sequences"):
                detail += ", return_sequences"
        elif cls in ("ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D"):
            detail = f"filters={cfg.get('filters')}, kernel_size={cfg.get('kernel_size')}"
            if cfg.get("return_sequences"):
                detail += ", return_sequences"
        elif cls == "Bidirectional":
            inner = (cfg.get("layer") or {}).get("config") or {}
            detail = f"{(cfg.get('layer') or {}).get('class_name')}(units={inner.get('units')}), " \
                     f"merge_mode={cfg.get('merge_mode', 'concat')}"
        elif cls == "Dense":
            detail = f"units={cfg.get('units')}, activation={cfg.get('activation')}"
        elif cls == "TimeDistributed":
            inner = cfg.get("layer") or {}
            detail = f"{inner.get('class_name')}({(inner.get('config') or {}).get('units', '')})"
        elif cls == "InputLayer":
            detail = f"shape={cfg.get('batch_shape', cfg.get('batch_input_shape'))}"
        elif cls == "Embedding":
            detail = f"{cfg.get('input_dim')}x{cfg.get('output_dim')}, mask_zero={cfg.get('mask_zero')}"
        rows.append((f"{name} ({cls})", detail, sizes.get(name, 0)))
    return rows


def _model_summary(mf):
    """The model's own ``summary()`` (the layout of the Keras that wrote the file), or
    None when the config does not build (the table below then describes it)."""
    import json

    from . import _model_from_json

    if mf.config is None:
        return None
    try:
        model = _model_from_json(json.dumps(mf.config), mf.keras_version, None)
        lines = []
        model.summary(print_fn=lines.append)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, NotImplementedError,
            RecursionError, OverflowError, MemoryError):
        return None  # builds as load_model does: whatever load_model refuses, this describes
    return "\n".join(lines)


def summary_text(path):
    """The summary of a saved ``.keras`` / ``.h5`` model file as text: the file's format and
    Keras version, then the model's ``summary()`` (Keras 3's table, or tf_keras's layout for
    a tf_keras file), or for a config gpulstm cannot build, its layers as the config names them.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    str
    """
    from . import read_model_file

    mf = read_model_file(path)
    # Per-layer parameter counts from the weights actually stored.
    sizes, i = {}, 0
    for name, n in mf.layer_weights:
        sizes[name] = sizes.get(name, 0) + int(sum(np.size(w) for w in mf.weights[i:i + n]))
        i += n
    total = int(sum(np.size(w) for w in mf.weights))
    lines = [f"File: {mf.path}", f"Format: {mf.format}, keras_version={mf.keras_version}"]
    table = _model_summary(mf)
    if table is not None:
        return "\n".join(lines + [table.rstrip("\n")])
    if mf.config is not None:
        name = (mf.config.get("config") or {}).get("name", "?")
        lines.append(f'Model: "{name}" ({mf.config.get("class_name")})')
        rows = _layer_rows(mf.config, sizes)
    else:
        rows = [(f"{n}", "", sizes.get(n, 0)) for n, _ in mf.layer_weights]
    w0 = max([len("Layer (type)")] + [len(r[0]) for r in rows]) + 2
    w1 = max([len("Details")] + [len(r[1]) for r in rows]) + 2
    sep = "-" * (w0 + w1 + 12)
    lines += [sep, f"{'Layer (type)':<{w0}}{'Details':<{w1}}{'Param #':>10}", sep]
    lines += [f"{a:<{w0}}{b:<{w1}}{c:>10,}" for a, b, c in rows]
    lines += [sep, f"Total params: {total:,}", sep]
    return "\n".join(lines)
