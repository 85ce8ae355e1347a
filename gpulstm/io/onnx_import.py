"""Run ONNX graphs built around the ``LSTM``, ``GRU`` and ``RNN`` operators on gpulstm.

The file is parsed with the ``onnx`` package (protobuf: data, no code).  Each
``LSTM`` node becomes gpulstm ``LSTM`` layers (ONNX gate order i, o, f, c is
reordered to Keras's i, f, c, o), each ``GRU`` node gpulstm ``GRU`` layers
(``linear_before_reset`` is ``reset_after``), each ``RNN`` node gpulstm
``SimpleRNN`` layers; the shape plumbing exporters emit around it
is evaluated with NumPy, and folded to constants at load time wherever its
inputs are constant; ``Gemm`` / ``MatMul`` + ``Add`` cover a Dense head.  An
operator outside that list is refused by name when the file is loaded.

A file is data and may be hostile: nodes no graph output depends on are never
evaluated, and every op's output size is computed from its inputs' shapes and
checked before anything is allocated (:func:`fold_limit` at load,
:func:`run_limit` per call).
"""
import os

import numpy as np

from .common import MAX_WEIGHT_BYTES, ModelFileError, UnsupportedModelError
from .onnx_gru import GRU_OP
from .onnx_lstm import LSTM_OP
from .onnx_ops import OPS, output_nbytes
from .onnx_recurrent import RuntimeWeights
from .onnx_rnn import RNN_OP

RECURRENT = {op.name: op for op in (LSTM_OP, GRU_OP, RNN_OP)}
_PLUMBING = sorted(OPS)
SUPPORTED_OPS = sorted(set(_PLUMBING) | set(RECURRENT))
_SLACK = 64 * 2**20


def fold_limit(tensor_bytes):
    """Bytes all constant folding at load may allocate: 64 MiB + 8 x the file's tensors."""
    return _SLACK + 8 * tensor_bytes


def run_limit(tensor_bytes, fed_bytes):
    """Bytes one op may allocate at run time: 64 MiB + 8 x (the file's tensors + the inputs fed)."""
    return _SLACK + 8 * (tensor_bytes + fed_bytes)


def _needed(graph):
    """Indices of the nodes some graph output depends on."""
    want = {o.name for o in graph.output}
    keep = set()
    for n in range(len(graph.node) - 1, -1, -1):
        node = graph.node[n]
        if any(o and o in want for o in node.output):
            keep.add(n)
            want.update(i for i in node.input if i)
    return keep


def _tensor(path, t, part):
    from onnx import TensorProto, numpy_helper

    if t.data_location == TensorProto.EXTERNAL:
        raise UnsupportedModelError(path, part, "tensors stored in external files are not read; "
                                    "save the model with all tensors inside the .onnx file")
    try:
        arr = numpy_helper.to_array(t)
    except Exception as e:  # malformed tensor protobuf
        raise ModelFileError(path, part, f"unreadable tensor ({e})") from None
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ModelFileError(path, part, "tensor contains NaN or infinity")
    if arr.dtype.kind not in "fiub":
        raise ModelFileError(path, part, f"unsupported tensor dtype {arr.dtype}")
    return arr


class OnnxModel:
    """An ONNX graph with LSTM / GRU / RNN nodes, evaluated with gpulstm and NumPy.

    Attributes
    ----------
    input_names, output_names : list of str
    layers : list
        The gpulstm layer stacks that run the graph's recurrent nodes whose weights
        are initializers, in graph order (a node whose W, R or B are graph inputs
        builds its stack when they arrive, see :mod:`gpulstm.io.onnx_recurrent`).
    """

    def __init__(self, path, graph, opset, backend=None):
        self.path = path
        self.opset = opset
        self.backend = backend
        self.consts = {}
        for t in graph.initializer:
            self.consts[t.name] = _tensor(path, t, f"initializer {t.name}")
        self.input_names = [i.name for i in graph.input if i.name not in self.consts]
        self.output_names = [o.name for o in graph.output]
        self.nodes, self.layers = [], []
        self.tensor_bytes = int(sum(v.nbytes for v in self.consts.values()))
        budget = [fold_limit(self.tensor_bytes)]
        needed = _needed(graph)
        known = set(self.consts) | set(self.input_names) | {""}
        for n, node in enumerate(graph.node):
            part = f"node {n} ({node.op_type} {node.name!r})"
            if node.domain not in ("", "ai.onnx"):
                raise UnsupportedModelError(path, part, f"operator domain {node.domain!r} is not supported")
            if node.op_type not in SUPPORTED_OPS:
                raise UnsupportedModelError(
                    path, part, f"ONNX operator {node.op_type!r} is not supported. Supported: "
                    f"{', '.join(SUPPORTED_OPS)}")
            if n not in needed:
                continue  # no output depends on it: never evaluated
            missing = [i for i in node.input if i not in known]
            if missing:
                raise ModelFileError(path, part, f"input {missing[0]!r} is not produced before this node")
            attrs = _attrs(path, node, part)
            if node.op_type in RECURRENT:
                runner = self._recurrent(RECURRENT[node.op_type], node, attrs, part)
                if runner.stack is not None:
                    self.layers.append(runner.stack)
                self.nodes.append((node, runner, part))
            elif all(i == "" or i in self.consts for i in node.input):
                # Constant plumbing: fold it now, within the load-time budget.
                outs = self._run_op(node, attrs, [self.consts.get(i) if i else None for i in node.input],
                                    part, budget)
                for name, v in zip(node.output, outs):
                    if name:
                        self.consts[name] = v
            else:
                self.nodes.append((node, attrs, part))
            known.update(node.output)
        for o in self.output_names:
            if o not in known:
                raise ModelFileError(path, f"output {o}", "graph output is never produced")

    def _run_op(self, node, attrs, inputs, part, budget):
        """Run a plumbing op once its output fits ``budget`` (a one-element list of bytes, spent)."""
        try:
            need = output_nbytes(node.op_type, attrs, inputs, self.opset)
            if need > budget[0]:
                raise ModelFileError(self.path, part, f"{node.op_type} would allocate {need} bytes, more "
                                     f"than the {budget[0]} left for this model (corrupted or hostile file?)")
            budget[0] -= need
            return OPS[node.op_type](attrs, inputs, self.opset)
        except (ValueError, IndexError, TypeError, KeyError) as e:
            if isinstance(e, ModelFileError):
                raise
            raise ModelFileError(self.path, part, f"cannot evaluate ({e})") from None

    def _recurrent(self, op, node, attrs, part):
        ins = list(node.input) + [""] * (op.inputs - len(node.input))
        try:
            if op.precheck is not None:
                op.precheck(ins, self.consts)
            runtime = [what for idx, what in ((1, "W"), (2, "R"), (3, "B"))
                       if ins[idx] and ins[idx] not in self.consts]
            if runtime:
                op.config(attrs)  # refuse what Keras cannot express now, not at the first call
                if any(i not in self.input_names for i in (ins[1], ins[2], ins[3]) if i and i not in self.consts):
                    raise UnsupportedModelError(
                        None, None, f"{op.name} input(s) {', '.join(runtime)} are computed by other nodes; "
                        f"gpulstm takes {op.name} weights as initializers or as graph inputs")
                return RuntimeWeights(op, attrs, self.backend)
            return op.convert(attrs, [self.consts.get(i) if i else None for i in ins[:4]], self.backend)
        except (ValueError, UnsupportedModelError) as e:
            cls = UnsupportedModelError if isinstance(e, UnsupportedModelError) or "not supported" in str(e) \
                else ModelFileError
            msg = e.detail if isinstance(e, UnsupportedModelError) else str(e)
            raise cls(self.path, part, msg) from None

    def predict(self, *inputs, backend=None):
        """Evaluate the graph.

        Parameters
        ----------
        *inputs : arrays, in ``input_names`` order (or one dict name -> array)

        Returns
        -------
        array, or a list of arrays when the graph has several outputs
        """
        if len(inputs) == 1 and isinstance(inputs[0], dict):
            feed = dict(inputs[0])
        else:
            if len(inputs) != len(self.input_names):
                raise ValueError(f"Expected {len(self.input_names)} input(s) {self.input_names}. "
                                 f"Received: {len(inputs)} input(s)")
            feed = dict(zip(self.input_names, inputs))
        env = dict(self.consts)
        for k, v in feed.items():
            v = np.asarray(v)
            env[k] = v.astype(np.float32) if v.dtype.kind == "f" else v
        limit = run_limit(self.tensor_bytes, sum(np.asarray(env[k]).nbytes for k in feed))
        for node, op, part in self.nodes:
            vals = [env[i] if i else None for i in node.input]
            if node.op_type in RECURRENT:
                outs = op.run(vals, backend=backend if backend is not None else self.backend)
            else:
                outs = self._run_op(node, op, vals, part, [limit])
            for name, v in zip(node.output, outs):
                if name:
                    env[name] = v
        res = [env[o] for o in self.output_names]
        return res[0] if len(res) == 1 else res

    __call__ = predict

    def summary(self, print_fn=print):
        counts = "".join(f"{sum(node.op_type == op for node, _, _ in self.nodes)} {op} node(s), "
                         for op in RECURRENT)
        print_fn(f"ONNX model {self.path} (opset {self.opset}): inputs {self.input_names}, "
                 f"outputs {self.output_names}, {counts}{len(self.nodes)} run-time node(s)")


def _attrs(path, node, part):
    from onnx import helper

    out = {}
    for a in node.attribute:
        try:
            v = helper.get_attribute_value(a)
        except Exception as e:
            raise ModelFileError(path, f"{part} attribute {a.name}", f"unreadable ({e})") from None
        if a.type == a.TENSOR:
            v = _tensor(path, v, f"{part} attribute {a.name}")
        elif isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif isinstance(v, list):
            v = [x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in v]
        out[a.name] = v
    return out


def load_onnx(path, backend=None):
    """Load an ONNX model whose graph runs ``LSTM`` / ``GRU`` / ``RNN`` nodes (e.g. ``torch.onnx.export``).

    Parameters
    ----------
    path : str or os.PathLike
        The ``.onnx`` file (tensors inside the file; external data is refused).
    backend : str, optional
        gpulstm backend for the LSTM / GRU / SimpleRNN layers (GRU and SimpleRNN: the CPU
        backend so far).

    Returns
    -------
    OnnxModel
        ``model.predict(x)`` gives what the graph computes.

    Raises
    ------
    ModelFileError / UnsupportedModelError
        Unreadable protobuf, unsupported operator (named), or LSTM / GRU / RNN attributes
        gpulstm cannot express (clip, input_forget, peepholes, activations without
        a Keras equivalent, ...).
    """
    try:
        import onnx
    except ImportError:
        raise ImportError("Loading ONNX files needs the onnx package: `pip install onnx`.") from None
    path = os.fspath(path)
    size = os.path.getsize(path)
    if size > MAX_WEIGHT_BYTES:
        raise ModelFileError(path, None, f"file of {size} bytes exceeds the size limit")
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as e:  # google.protobuf DecodeError and friends
        raise ModelFileError(path, None, f"not a readable ONNX protobuf ({type(e).__name__}: {e})") from None
    opset = None
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            opset = int(o.version)
    if opset is None:
        raise ModelFileError(path, "opset_import", "no default-domain opset")
    if not model.graph.node:
        raise ModelFileError(path, "graph", "graph has no nodes")
    return OnnxModel(path, model.graph, opset, backend=backend)
