"""NumPy versions of the ONNX shape-plumbing ops, and the bytes each would allocate.

Each op takes ``(attrs, inputs, opset)`` and returns a list of outputs;
:func:`output_nbytes` says, from the inputs' shapes alone, how many bytes an
op's output takes, so a caller can refuse it before anything is allocated.
"""
import numpy as np

_MAX_ELEMENTS = 1 << 28  # ConstantOfShape / Expand must not build huge arrays


def _ints(v):
    return [int(i) for i in np.asarray(v).reshape(-1)]


def _checked_shape(shape):
    shape = _ints(shape)
    if any(s < 0 for s in shape) or int(np.prod(shape, dtype=np.float64)) > _MAX_ELEMENTS:
        raise ValueError(f"refusing to build an array of shape {shape}")
    return shape


def _axes(attrs, inputs, idx, opset, since):
    if opset >= since:
        return _ints(inputs[idx]) if len(inputs) > idx and inputs[idx] is not None else None
    return attrs.get("axes")


def _squeeze(a, i, o):
    axes = _axes(a, i, 1, o, 13)
    return [np.squeeze(i[0], axis=tuple(axes)) if axes else np.squeeze(i[0])]


def _unsqueeze(a, i, o):
    axes = _axes(a, i, 1, o, 13)
    x = np.asarray(i[0])
    rank = x.ndim + len(axes)
    for ax in sorted(ax % rank for ax in axes):
        x = np.expand_dims(x, ax)
    return [x]


def _slice(a, i, o):
    x = np.asarray(i[0])
    if o >= 10:
        starts, ends = _ints(i[1]), _ints(i[2])
        axes = _ints(i[3]) if len(i) > 3 and i[3] is not None else list(range(len(starts)))
        steps = _ints(i[4]) if len(i) > 4 and i[4] is not None else [1] * len(starts)
    else:
        starts, ends = a["starts"], a["ends"]
        axes, steps = a.get("axes", list(range(len(starts)))), [1] * len(starts)
    sl = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        if st == 0:
            raise ValueError("Slice step 0")
        sl[ax] = slice(*slice(s, e, st).indices(x.shape[ax]))
    return [x[tuple(sl)]]


def _shape(a, i, o):
    s = np.array(np.shape(i[0]), dtype=np.int64)
    return [s[a.get("start", 0):a.get("end", len(s))]]


def _gemm(a, i, o):
    A, B = np.asarray(i[0], np.float32), np.asarray(i[1], np.float32)
    A = A.T if a.get("transA", 0) else A
    B = B.T if a.get("transB", 0) else B
    y = a.get("alpha", 1.0) * (A @ B)
    if len(i) > 2 and i[2] is not None:
        y = y + a.get("beta", 1.0) * np.asarray(i[2], np.float32)
    return [y.astype(np.float32)]


def _reshape(a, i, o):
    x, shape = np.asarray(i[0]), _ints(i[1])
    if not a.get("allowzero", 0):
        shape = [x.shape[k] if s == 0 else s for k, s in enumerate(shape)]
    return [x.reshape(shape)]


def _cast(a, i, o):
    from onnx import helper

    return [np.asarray(i[0]).astype(helper.tensor_dtype_to_np_dtype(a["to"]))]


def _constant(a, i, o):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in a:
            v = np.asarray(a[key])
            return [v.astype(np.float32) if v.dtype == np.float64 else v]
    raise ValueError(f"Constant with unsupported attribute {sorted(a)}")


def _constant_of_shape(a, i, o):
    v = a.get("value", np.zeros(1, np.float32))
    return [np.full(_checked_shape(i[0]), np.asarray(v).reshape(-1)[0], dtype=np.asarray(v).dtype)]


def _expand(a, i, o):
    x, shape = np.asarray(i[0]), _checked_shape(i[1])
    return [x * np.ones(shape, dtype=x.dtype)]


OPS = {
    "Identity": lambda a, i, o: [i[0]],
    "Constant": _constant,
    "Transpose": lambda a, i, o: [np.transpose(i[0], a.get("perm"))],
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Slice": _slice,
    "Shape": _shape,
    "Gather": lambda a, i, o: [np.take(i[0], np.asarray(i[1], dtype=np.int64), axis=a.get("axis", 0))],
    "Concat": lambda a, i, o: [np.concatenate([np.asarray(v) for v in i if v is not None], axis=a["axis"])],
    "ConstantOfShape": _constant_of_shape,
    "Expand": _expand,
    "Reshape": _reshape,
    "Cast": _cast,
    "Gemm": _gemm,
    "MatMul": lambda a, i, o: [np.matmul(np.asarray(i[0], np.float32), np.asarray(i[1], np.float32))],
    "Add": lambda a, i, o: [np.add(i[0], i[1])],
}


# --- output sizes, known before running an op ------------------------------------

def _size(v):
    return int(np.prod(np.shape(v), dtype=np.float64)) if v is not None else 0


def _nbytes(v):
    return _size(v) * np.asarray(v).dtype.itemsize if v is not None else 0


def _elements(shape):
    return int(np.prod(shape, dtype=np.float64))


def _matmul_shape(a, b):
    a2 = a if len(a) >= 2 else (1,) + tuple(a)
    b2 = b if len(b) >= 2 else tuple(b) + (1,)
    return tuple(np.broadcast_shapes(a2[:-2], b2[:-2])) + (a2[-2], b2[-1])


def _gemm_bytes(a, i, o):
    A, B = np.shape(i[0]), np.shape(i[1])
    if len(A) != 2 or len(B) != 2:
        raise ValueError(f"Gemm needs 2-d A and B, found {A} and {B}")
    M = A[1] if a.get("transA", 0) else A[0]
    N = B[0] if a.get("transB", 0) else B[1]
    shape = (M, N) if len(i) < 3 or i[2] is None else np.broadcast_shapes((M, N), np.shape(i[2]))
    return _elements(shape) * 4


def _gather_bytes(a, i, o):
    data, idx = np.asarray(i[0]), np.shape(i[1])
    axis = a.get("axis", 0) % max(data.ndim, 1)
    per = _size(data) // data.shape[axis] if data.ndim and data.shape[axis] else 0
    return _elements(idx) * per * data.dtype.itemsize


def _cast_bytes(a, i, o):
    from onnx import helper

    return _size(i[0]) * np.dtype(helper.tensor_dtype_to_np_dtype(a["to"])).itemsize


def _constant_of_shape_bytes(a, i, o):
    v = np.asarray(a.get("value", np.zeros(1, np.float32)))
    return _elements(_checked_shape(i[0])) * v.dtype.itemsize


_SIZES = {
    "ConstantOfShape": _constant_of_shape_bytes,
    "Expand": lambda a, i, o: _elements(np.broadcast_shapes(np.shape(i[0]), tuple(_checked_shape(i[1]))))
    * np.asarray(i[0]).dtype.itemsize,
    "MatMul": lambda a, i, o: _elements(_matmul_shape(np.shape(i[0]), np.shape(i[1]))) * 4,
    "Gemm": _gemm_bytes,
    "Add": lambda a, i, o: _elements(np.broadcast_shapes(np.shape(i[0]), np.shape(i[1])))
    * max(np.asarray(i[0]).dtype.itemsize, np.asarray(i[1]).dtype.itemsize),
    "Concat": lambda a, i, o: sum(_nbytes(v) for v in i),
    "Gather": _gather_bytes,
    "Cast": _cast_bytes,
    "Constant": lambda a, i, o: max((_nbytes(a[k]) for k in a if k.startswith("value")), default=0),
}


def output_nbytes(op_type, attrs, inputs, opset):
    """The bytes ``OPS[op_type]`` would allocate for its output, from the inputs' shapes.

    Ops that reshape, slice or move data are charged the size of their largest input.
    Raises ValueError when the shapes do not fit the op.
    """
    est = _SIZES.get(op_type)
    if est is not None:
        return int(est(attrs, inputs, opset))
    return max((_nbytes(v) for v in inputs if v is not None), default=0)
