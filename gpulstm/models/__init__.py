"""Keras-style models: functional ``Model``, ``Sequential`` and ``model_from_json``."""
from gpulstm.models import symbolic  # noqa: F401  (installs the layers' symbolic-call hook)
from gpulstm.models.functional import Model
from gpulstm.models.sequential import Sequential
from gpulstm.models.from_config import model_from_json
from gpulstm.models.serialization import supported_layers
from gpulstm.models.symbolic import KerasTensor

__all__ = ["Model", "Sequential", "model_from_json", "supported_layers", "KerasTensor"]
