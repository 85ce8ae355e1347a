"""Embedding -> LSTM as a gather from a projected table.

An LSTM fed by an Embedding computes ``embeddings[ids] @ kernel + bias`` on every call.
The table ``embeddings @ kernel + bias`` (vocab, 4U) holds every row that product can
have, so one gather replaces the input GEMM (the kernels take it as ``x_proj``).  The
table is made when it fits ``MAX_TABLE_BYTES`` and is cached on both layers' weight
lists: ``set_weights`` or ``build`` on either layer installs a new list, and the next
call recomputes it.

The gather writes and reads 4U floats per row and step where the GEMM it replaces does
E * 4U multiply-adds: it pays from ``MIN_EMBED_DIM`` embedding dimensions on.  Measured,
``predict`` of 4096 sequences at batch 256, one thread, Zen 5, gather / GEMM: E = 32,
U = 64: 192 / 171 ms; E = 64, U = 64 (Bidirectional): 232 / 262; E = 128, U = 128:
541 / 636 and 1095 / 1212.
"""
import numpy as np

from gpulstm.dispatch import get_backend
from gpulstm.layers import _lstm_checks as checks

MAX_TABLE_BYTES = 64 * 2**20
MIN_EMBED_DIM = 48


def projected_table(embedding, lstm):
    """``embeddings @ kernel + bias`` (vocab, 4U), read-only; None when over the limit or
    when the embedding is narrower than MIN_EMBED_DIM."""
    e_ws, l_ws = embedding._weights, lstm._weights
    cache = lstm.__dict__.get("_table_cache")
    if cache is not None and cache[0] is e_ws and cache[1] is l_ws:
        return cache[2]
    emb, kernel = e_ws[0], l_ws[0]
    table = None
    nbytes = emb.shape[0] * kernel.shape[1] * kernel.dtype.itemsize
    if emb.shape[1] == kernel.shape[0] and nbytes <= MAX_TABLE_BYTES and \
            emb.shape[1] >= MIN_EMBED_DIM:
        table = emb.astype(kernel.dtype, copy=False) @ kernel  # (vocab, E) @ (E, 4U)
        if lstm.use_bias:
            table += l_ws[2]
        table.flags.writeable = False
    lstm._table_cache = (e_ws, l_ws, table)  # racing threads compute the same table
    return table


def call_on_ids(lstm, embedding, ids, mask=None, initial_state=None, training=None,
                backend=None):
    """``lstm(embedding(ids))`` through the table, or NotImplemented where that does not
    apply (the caller then runs the embedded input through ``lstm.call``).

    ``ids`` must already have passed ``embedding.call`` (its range checks).
    """
    from gpulstm.layers.lstm import LSTM

    if type(lstm) is not LSTM or not (lstm.built and embedding.built) or lstm.time_major:
        return NotImplemented
    if training and (lstm.dropout > 0 or lstm.recurrent_dropout > 0):
        return NotImplemented
    if type(ids) is not np.ndarray or ids.ndim != 2 or ids.dtype.kind not in "iu":
        return NotImplemented
    be, name, _ = get_backend(backend if backend is not None else lstm.backend, ids)
    if name != "cpu":
        return NotImplemented
    table = projected_table(embedding, lstm)
    if table is None:
        return NotImplemented
    B, T = ids.shape
    m = checks.mask(mask, B, T, lstm, np)
    if initial_state is not None:
        initial_state = checks.states(initial_state, B, lstm, "initial_state", np)
    x_proj = table[ids]  # (B, T, 4U)
    return lstm._run(be, name, None, m, initial_state, training, np, x_proj)
