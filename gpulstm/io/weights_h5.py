"""Reader for Keras 3 ``.weights.h5`` files (``model.save_weights``).

The file holds the same tree as ``model.weights.h5`` inside a ``.keras`` zip
and no architecture: the model config comes from the model being loaded into.
"""
from .common import ModelFile
from .keras_zip import read_weights_tree


def read_weights_h5(path, config, keras_version=None, expected=None):
    """Read a ``.weights.h5`` file for a model with config ``config``.

    Parameters
    ----------
    path : str or os.PathLike
    config : dict
        The model config (``{"class_name": ..., "config": ...}``), e.g.
        ``json.loads(model.to_json())``.
    keras_version : str, optional
        Recorded in the result; the file itself does not say.
    expected : Expected, optional
        The weights the model needs (:func:`gpulstm.io.expected.from_model`):
        declared shapes are compared with it before anything is read.

    Returns
    -------
    ModelFile
    """
    path = str(path)
    reader = read_weights_tree(path, path, config, path, expected)
    return ModelFile(path, "weights_h5", config, keras_version, reader.weights, reader.paths,
                     reader.layer_weights)
