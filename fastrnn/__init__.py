"""fastrnn: recurrent networks on CPUs, with typed Cython time loops over scipy's BLAS.

Public names only; see README.md for a tour.
"""
__version__ = "0.1.0"

# ---- core recurrent layers and cells ----
from .layers.recurrent import GRU, LSTM, RNN  # noqa: E402
from .layers.cells import GRUCell, LSTMCell, RNNCell  # noqa: E402

# ---- other layers, losses, optimizers, training, models, io (one import line per module) ----
from .layers.linear import Linear  # noqa: E402
from .layers.embedding import Embedding  # noqa: E402
from .layers.dropout import Dropout  # noqa: E402
from .layers.layernorm import LayerNorm  # noqa: E402
from .layers.sequential import Sequential  # noqa: E402
from .losses import mse_loss, softmax_cross_entropy  # noqa: E402
from .optim import SGD, Adam, AdamW, clip_grad_norm  # noqa: E402
from .schedules import CosineAnnealingLR, LinearWarmup, StepLR  # noqa: E402
from .io import FormatError, load, save  # noqa: E402
from .torch_file import load_torch_state_dict  # noqa: E402
from .train import backward_sequence, evaluate, fit  # noqa: E402
from .models import CharLM, Forecaster, LanguageModel, SequenceClassifier, SequenceTagger  # noqa: E402
from .data import CharVocab  # noqa: E402

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]
__all__ += ["Linear", "Embedding", "Dropout", "LayerNorm", "Sequential", "softmax_cross_entropy", "mse_loss"]
__all__ += ["SGD", "Adam", "AdamW", "clip_grad_norm", "StepLR", "CosineAnnealingLR", "LinearWarmup",
            "save", "load", "FormatError", "load_torch_state_dict"]
__all__ += ["fit", "evaluate", "backward_sequence", "LanguageModel", "CharLM", "SequenceClassifier",
            "SequenceTagger", "Forecaster", "CharVocab"]
