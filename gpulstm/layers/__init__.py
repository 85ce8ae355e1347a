"""gpulstm layers."""
from gpulstm.layers.base import Layer
from gpulstm.layers.gru import GRU
from gpulstm.layers.lstm import LSTM
from gpulstm.layers.simple_rnn import SimpleRNN

__all__ = ["Layer", "LSTM", "GRU", "SimpleRNN"]
