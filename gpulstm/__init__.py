"""gpulstm: Keras-exact LSTM inference on numba (CPU) and numba.cuda + CuPy (GPU).

``import gpulstm`` imports neither numba nor CuPy and never touches a GPU: the
kernels load on first use.
"""
from gpulstm._version import __version__
from gpulstm.dispatch import (BACKENDS, BackendUnavailableError, available_backends,
                              resolve_backend)
from gpulstm.layers import GRU, LSTM, Layer
from gpulstm._cuda_backend import register as _register_cuda

_register_cuda()  # registers lazily: imports neither numba nor CuPy


def info():
    """Versions, backends and why each is or isn't available (see ``gpulstm.info``)."""
    from gpulstm._info import info as _info

    return _info()


__all__ = ["__version__", "LSTM", "GRU", "Layer", "info", "BACKENDS", "BackendUnavailableError",
           "available_backends", "resolve_backend"]
from gpulstm.layers import (RNN, GRUCell, LSTMCell, SimpleRNN, SimpleRNNCell,  # noqa: E402
                            StackedRNNCells)
__all__ += ["SimpleRNN", "RNN", "LSTMCell", "GRUCell", "SimpleRNNCell", "StackedRNNCells"]

# -- Keras model surface (issue 4) ---------------------------------------------------
from gpulstm import utils  # noqa: E402
from gpulstm.layers.core import Dense, Dropout, Embedding, Input, InputLayer, Masking  # noqa: E402
from gpulstm.layers.merge import Add, Concatenate, add, concatenate  # noqa: E402
from gpulstm.layers.reshaping import Reshape  # noqa: E402
from gpulstm.layers.wrappers import Bidirectional, TimeDistributed  # noqa: E402
from gpulstm.models import Model, Sequential, model_from_json  # noqa: E402

__all__ += ["Input", "InputLayer", "Dense", "Dropout", "Embedding", "Masking",
            "TimeDistributed", "Bidirectional", "Reshape", "Add", "Concatenate", "add", "concatenate",
            "Model", "Sequential", "model_from_json", "utils"]

# -- loading saved models (issue 5) -----------------------------------------------------
from gpulstm.io import (ModelFileError, UnsupportedModelError, from_torch, load_model,  # noqa: E402
                        load_onnx)

__all__ += ["load_model", "from_torch", "load_onnx", "ModelFileError", "UnsupportedModelError"]

# -- layers around the recurrent ones (issue 16): imported on first use ------------------
_EXTRA = ("Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax", "Conv1D", "Conv2D",
          "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot", "AlphaDropout",
          "GaussianDropout", "GaussianNoise", "SpatialDropout1D", "SpatialDropout2D",
          "BatchNormalization", "LayerNormalization", "MaxPooling1D", "MaxPooling2D",
          "AveragePooling1D", "AveragePooling2D", "GlobalMaxPooling1D", "GlobalAveragePooling1D",
          "GlobalMaxPooling2D", "GlobalAveragePooling2D", "RepeatVector", "Flatten", "Permute",
          "Cropping1D", "ZeroPadding1D", "UpSampling1D", "Attention", "AdditiveAttention",
          "MaxPool1D", "MaxPool2D", "AvgPool1D", "AvgPool2D", "GlobalMaxPool1D",
          "GlobalAvgPool1D", "GlobalMaxPool2D", "GlobalAvgPool2D", "Convolution1D",
          "Convolution2D", "subtract", "multiply", "average", "maximum", "minimum", "dot",
          "Conv3D", "Convolution3D", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "Cropping2D",
          "Cropping3D", "ZeroPadding2D", "ZeroPadding3D", "UpSampling2D", "UpSampling3D")
__all__ += list(_EXTRA)


def __getattr__(name):
    if name in _EXTRA:
        from gpulstm.layers import extra

        return getattr(extra, name)
    raise AttributeError(f"module 'gpulstm' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXTRA))
