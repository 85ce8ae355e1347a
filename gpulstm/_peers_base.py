"""What every contender of ``gpulstm bench`` shares: the runner and the two refusals."""


class Unavailable(Exception):
    """The contender's library is not installed or cannot run here."""


class Unsupported(Exception):
    """The contender cannot express this configuration."""


class Runner:
    """One contender ready to run one case.

    ``call(x)`` runs one forward pass and returns the last output (B, U) as NumPy;
    stateful runners carry h and c from call to call until ``reset()``.
    """

    def __init__(self, name, call, *, kind="peer", device="cpu", version=None, reset=None, notes=None):
        self.name = name
        self.call = call
        self.kind = kind
        self.device = device
        self.version = version
        self.reset = reset or (lambda: None)
        self.notes = notes


def gate_blocks(a, U):
    """Keras gate blocks along the last axis: i, f, c, o (LSTM) or z, r, h (GRU)."""
    return [a[..., k * U:(k + 1) * U] for k in range(a.shape[-1] // U)]
