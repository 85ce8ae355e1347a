"""Dependencies point down: the kernels import nothing from the layers, models, files
or the activation-name registry above them (those re-export what they take from kernels/)."""
import ast
import os

KERNELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kernels")
ABOVE = ("gpulstm.activations", "gpulstm.layers", "gpulstm.models", "gpulstm.io")


def _imports(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def test_kernels_import_nothing_from_above():
    bad = []
    for name in sorted(os.listdir(KERNELS)):
        if name.endswith(".py"):
            bad += [f"{name}: {m}" for m in _imports(os.path.join(KERNELS, name))
                    if m == "gpulstm" or m.startswith(ABOVE)]
    assert not bad, bad


def test_the_layers_side_re_exports_the_kernels_definitions():
    from gpulstm import activations
    from gpulstm.kernels import array_activations, codes
    from gpulstm.layers import _common

    assert activations.CODES is codes.CODES and activations.CUSTOM == codes.CUSTOM
    assert _common._XP_ACTIVATIONS is array_activations.XP_ACTIVATIONS
