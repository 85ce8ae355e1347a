"""gpulstm layers."""
from gpulstm.layers.base import Layer
from gpulstm.layers.gru import GRU
from gpulstm.layers.lstm import LSTM
from gpulstm.layers.simple_rnn import SimpleRNN
from gpulstm.layers.cells import GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells
from gpulstm.layers.rnn import RNN

__all__ = ["Layer", "LSTM", "GRU", "SimpleRNN", "RNN", "LSTMCell", "GRUCell", "SimpleRNNCell",
           "StackedRNNCells"]
