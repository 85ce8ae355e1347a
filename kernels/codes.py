"""The integer activation codes the kernels switch on (no numba, no NumPy).

The kernels own these: ``gpulstm.activations`` re-exports them and maps Keras names
and aliases onto them.
"""

# One code per elementwise function; the kernels branch on it at run time so one
# compiled kernel serves every (activation, recurrent_activation) pair.
CODES = {
    "linear": 0,
    "tanh": 1,
    "sigmoid": 2,
    "hard_sigmoid_k3": 3,  # Keras 3: clip(x / 6 + 0.5, 0, 1)
    "hard_sigmoid_k2": 4,  # Keras 1/2 and tf_keras: clip(0.2 x + 0.5, 0, 1)
    "relu": 5,
    "softsign": 6,
    "softplus": 7,
    "elu": 8,
    "selu": 9,
    "swish": 10,
    "gelu": 11,
    "exponential": 12,
    "relu6": 13,
    "hard_silu": 14,
    "leaky_relu": 15,
    "log_sigmoid": 16,
    "mish": 17,
    "hard_tanh": 18,
    "celu": 19,
    "silu": 10,
}

CUSTOM = -1  # a user callable compiled into its own kernel
