"""fastrnn: recurrent networks on CPUs, with typed Cython time loops over scipy's BLAS.

Public names only; see README.md for a tour.
"""
__version__ = "0.1.0"

# ---- core recurrent layers and cells ----
from .layers.recurrent import GRU, LSTM, RNN  # noqa: E402
from .layers.cells import GRUCell, LSTMCell, RNNCell  # noqa: E402

# ---- other layers, losses, optimizers, training, models, io (one import line per module) ----

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]
