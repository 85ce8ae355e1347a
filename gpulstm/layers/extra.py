"""The layers of issue 16 in one place: what ``gpulstm`` exports and what model configs
may name (``gpulstm.models.serialization`` looks layers up by class name)."""
from gpulstm.layers.activation_layers import ELU, PReLU, ReLU, Activation, LeakyReLU, Softmax
from gpulstm.layers.attention import AdditiveAttention, Attention
from gpulstm.layers.conv_lstm import ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
from gpulstm.layers.convolutional import Conv1D, Conv2D, Conv3D
from gpulstm.layers.merge_ops import (Average, Dot, Maximum, Minimum, Multiply, Subtract,
                                      average, dot, maximum, minimum, multiply, subtract)
from gpulstm.layers.noise import (AlphaDropout, GaussianDropout, GaussianNoise,
                                  SpatialDropout1D, SpatialDropout2D)
from gpulstm.layers.normalization import BatchNormalization, LayerNormalization
from gpulstm.layers.pooling import (AveragePooling1D, AveragePooling2D, GlobalAveragePooling1D,
                                    GlobalAveragePooling2D, GlobalMaxPooling1D,
                                    GlobalMaxPooling2D, MaxPooling1D, MaxPooling2D)
from gpulstm.layers.sequence_shape import (Cropping1D, Flatten, Permute, RepeatVector,
                                           UpSampling1D, ZeroPadding1D)
from gpulstm.layers.spatial_shape import (Cropping2D, Cropping3D, UpSampling2D, UpSampling3D,
                                          ZeroPadding2D, ZeroPadding3D)

EXTRA_LAYERS = (Activation, ReLU, LeakyReLU, ELU, PReLU, Softmax, Conv1D, Conv2D,
                Subtract, Multiply, Average, Maximum, Minimum, AlphaDropout, GaussianDropout,
                GaussianNoise, SpatialDropout1D, SpatialDropout2D, BatchNormalization,
                LayerNormalization, MaxPooling1D, MaxPooling2D, AveragePooling1D,
                AveragePooling2D, GlobalMaxPooling1D, GlobalAveragePooling1D,
                GlobalMaxPooling2D, GlobalAveragePooling2D, RepeatVector, Flatten, Permute,
                Cropping1D, ZeroPadding1D, UpSampling1D, Dot, Attention, AdditiveAttention,
                Conv3D, ConvLSTM1D, ConvLSTM2D, ConvLSTM3D, Cropping2D, Cropping3D,
                ZeroPadding2D, ZeroPadding3D, UpSampling2D, UpSampling3D)

# Keras's aliases (MaxPool2D, GlobalAvgPool1D...) are the same classes under other names.
ALIASES = {"MaxPool1D": MaxPooling1D, "MaxPool2D": MaxPooling2D,
           "AvgPool1D": AveragePooling1D, "AvgPool2D": AveragePooling2D,
           "GlobalMaxPool1D": GlobalMaxPooling1D, "GlobalAvgPool1D": GlobalAveragePooling1D,
           "GlobalMaxPool2D": GlobalMaxPooling2D, "GlobalAvgPool2D": GlobalAveragePooling2D,
           "Convolution1D": Conv1D, "Convolution2D": Conv2D, "Convolution3D": Conv3D}
globals().update(ALIASES)

__all__ = [c.__name__ for c in EXTRA_LAYERS] + list(ALIASES) + [
    "subtract", "multiply", "average", "maximum", "minimum", "dot"]
