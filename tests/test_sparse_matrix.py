"""layers/sparse_matrix.py: the one check, the one write path, the finder."""

import ast
import pathlib

import keras
import numpy as np
import pytest

import keras_sparse_rnn as ksr
from keras_sparse_rnn.dst import optimizer_slots
from keras_sparse_rnn.layers.sparse_matrix import (SparseMatrix, sparse_layers,
                                                   sparse_matrices, topology_hook)

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "keras_sparse_rnn"


def dense(sparsity=0.5, block=None, units=8, input_dim=8):
    layer = ksr.SparseDense(units, sparsity=sparsity, mask_seed=3, block=block,
                            name="d")
    layer.build((None, input_dim))
    return layer, layer.sparse_matrix("kernel")


# What it is -----------------------------------------------------------------

def test_one_object_per_sparse_weight():
    layer, matrix = dense()
    assert isinstance(matrix, SparseMatrix)
    assert layer.get_sparse_weight_info() == [matrix]
    assert (matrix.layer, matrix.name, matrix.weight, matrix.mask) == (
        layer, "kernel", layer.kernel, layer.kernel_mask)
    assert (matrix.gates, matrix.gate_names, matrix.kind, matrix.block_shape) == (
        1, None, "matmul", None)
    assert matrix.description == "SparseDense 'd'"
    assert matrix.expected_count() == 32 and matrix.sparsity == 0.5
    assert matrix.gate_counts().tolist() == [32]


def test_cell_matrices_are_described_by_the_user_layer():
    lstm = ksr.SparseLSTM(4, sparsity=0.5, mask_seed=1, name="lm")
    lstm.build((None, 3, 2))
    kernel = lstm.cell.sparse_matrix("kernel")
    assert kernel.description == "SparseLSTM 'lm'"
    assert kernel.gates == 4 and kernel.gate_names == ("i", "f", "c", "o")
    counts = kernel.gate_counts()
    assert len(counts) == 4 and counts.sum() == kernel.expected_count() == 16
    assert kernel.gate_counts(np.ones((2, 16))).tolist() == [8, 8, 8, 8]


def test_deprecated_names_still_work():
    with pytest.warns(DeprecationWarning, match="SparseMatrix"):
        assert ksr.SparseWeight is SparseMatrix
    with pytest.warns(DeprecationWarning, match="SparseMatrix"):
        from keras_sparse_rnn.layers import SparseWeight
    assert SparseWeight is SparseMatrix
    model = keras.Sequential([keras.Input((4,)), ksr.SparseDense(3, sparsity=0.5)])
    with pytest.warns(DeprecationWarning, match="sparse_matrices"):
        assert ksr.sparse_weight_info(model) == ksr.sparse_matrices(model)


# The one check --------------------------------------------------------------

def test_check_catches_a_weight_outside_its_mask():
    _, matrix = dense()
    weight, mask = matrix.weight.numpy(), matrix.mask.numpy()
    matrix.check()  # as built
    matrix.check(weight, mask)
    weight[mask == 0] = 1.0
    with pytest.raises(ValueError, match="32 weights of 'kernel' outside the mask "
                       "are non-zero"):
        matrix.check(weight, mask)
    with pytest.raises(ValueError, match="would leave 32 weights of 'kernel' "
                       r"non-zero outside its mask \('kernel_mask', 32 of 64"):
        matrix.check(weight, mask, counts=False, context="assign")
    with pytest.raises(ValueError, match="Layer 'd': 32 weights of 'd/kernel' "
                       "outside its mask are non-zero; the exporter"):
        matrix.check(weight, mask, counts=False, context="export")


def test_check_catches_a_wrong_count_or_values():
    _, matrix = dense()
    weight, mask = matrix.weight.numpy(), matrix.mask.numpy()
    fewer = mask.copy()
    fewer[np.argwhere(mask == 1)[0][0], np.argwhere(mask == 1)[0][1]] = 0
    with pytest.raises(ValueError, match=r"SparseDense 'd', mask 'kernel_mask': the "
                       "mask has 31 active weights, but the layer's sparsity 0.5 "
                       r"requires exactly 32 for a weight of shape \(8, 8\)"):
        matrix.check(weight * fewer, fewer)
    matrix.check(weight * fewer, fewer, counts=False)  # only the outside part
    with pytest.raises(ValueError, match="a mask must hold only 0 and 1"):
        matrix.check(weight, mask * 0.5)


def test_check_catches_a_broken_constant_fan_in():
    _, matrix = dense(sparsity=0.5, block=(4, 4), units=8, input_dim=16)
    assert matrix.constant_fan_in and matrix.fan_in() == (2, 4)
    mask = matrix.mask.numpy()
    matrix.check(matrix.weight.numpy(), mask)
    # A block half on.
    half = mask.copy()
    rows, cols = np.nonzero(mask)
    half[rows[0], cols[0]] = 0
    with pytest.raises(ValueError, match=r"blocks of \(4, 4\) must be wholly "
                       "active or wholly inactive"):
        matrix.check(np.zeros_like(mask), half)
    # Whole blocks, the right total, but block column 0 with 3 and 1 with 1.
    moved = np.zeros_like(mask)
    moved[0:12, 0:4] = 1
    moved[0:4, 4:8] = 1
    assert moved.sum() == mask.sum()
    with pytest.raises(ValueError, match="every block column must have exactly 2 "
                       "active blocks .* but block column 0 has 3"):
        matrix.check(np.zeros_like(mask), moved)


def test_layer_guard_and_export_use_the_one_check(monkeypatch):
    from keras_sparse_rnn.export import checks

    layer, matrix = dense()
    model = keras.Sequential([keras.Input((8,)), layer])
    calls = []
    original = SparseMatrix.check

    def spy(self, *args, **kwargs):
        calls.append(kwargs.get("context", "check"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SparseMatrix, "check", spy)
    layer.set_weights(layer.get_weights())
    layer.kernel.assign(layer.kernel.numpy())
    layer.save_own_variables({})
    checks.check_exportable(model, None, True)
    assert calls == ["check", "assign", "check", "export"]
    values = matrix.weight.numpy()
    values[matrix.mask.numpy() == 0] = 2.0
    with pytest.raises(ValueError, match="non-zero outside its mask"):
        layer.kernel.assign(values)  # the guard
    with pytest.raises(ValueError, match="outside the mask are non-zero"):
        layer.set_weights([values, layer.bias.numpy(), matrix.mask.numpy()])
    with keras_sparse_rnn_guard_off():
        layer.kernel.assign(values)
    with pytest.raises(ksr.ExportError, match="outside its mask are non-zero"):
        checks.check_exportable(model, None, True)


def keras_sparse_rnn_guard_off():
    from keras_sparse_rnn.layers import guard

    return guard.unchecked()


# The one write path -----------------------------------------------------------

class HookedAdam(keras.optimizers.Adam):
    """Adam with a topology hook that records its calls."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.hook_calls = []

    def update_sparse_topology(self, variable, new_mask, grown):
        self.hook_calls.append((variable, np.asarray(new_mask), np.asarray(grown)))


def test_replace_resets_slots_at_grown_positions_and_calls_the_hook():
    layer, matrix = dense()
    optimizer = HookedAdam()
    optimizer.build(layer.trainable_variables)
    slots = dict(optimizer_slots.slot_variables(optimizer, matrix.weight))
    for slot in slots.values():
        slot.assign(np.ones(slot.shape, "float32"))
    mask = matrix.mask.numpy()
    inactive = np.argwhere(mask == 0)[0]
    active = np.argwhere(mask == 1)[0]
    new_mask = mask.copy()
    new_mask[tuple(inactive)], new_mask[tuple(active)] = 1, 0
    grown = np.zeros_like(mask)
    grown[tuple(inactive)] = 1
    weight = matrix.weight.numpy() * new_mask
    wrapped = keras.optimizers.LossScaleOptimizer(optimizer)
    assert topology_hook(wrapped) == optimizer.update_sparse_topology
    matrix.replace(new_mask, weight, grown, wrapped)
    np.testing.assert_array_equal(matrix.mask.numpy(), new_mask)
    np.testing.assert_array_equal(matrix.weight.numpy(), weight)
    assert set(slots) == {"_momentums", "_velocities"}
    for slot in slots.values():
        np.testing.assert_array_equal(slot.numpy(), 1 - grown)
    [(variable, hook_mask, hook_grown)] = optimizer.hook_calls
    assert variable is matrix.weight
    np.testing.assert_array_equal(hook_mask, new_mask)
    np.testing.assert_array_equal(hook_grown, grown)
    matrix.check()  # a consistent pair, written without the guard's check


def test_replace_without_optimizer_only_assigns():
    layer, matrix = dense()
    optimizer = HookedAdam()
    optimizer.build(layer.trainable_variables)
    mask = np.zeros((8, 8), "float32")
    mask[:4] = 1  # another count: replace does not check (the caller did)
    matrix.replace(mask, np.ones((8, 8), "float32") * mask)
    assert matrix.mask.numpy().sum() == 32 and optimizer.hook_calls == []
    matrix.replace(mask, np.ones((8, 8), "float32") * mask, optimizer=optimizer)
    [(_, _, grown)] = optimizer.hook_calls  # no grown positions
    assert not grown.any()


def test_every_mask_write_goes_through_replace():
    """`guard.unchecked()` is entered only by `SparseMatrix.replace` (and
    the guard's own checkpoint restore); no other module assigns a mask."""
    users = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "unchecked":
                users.add(name)
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "assign"
                    and isinstance(node.func.value, ast.Attribute)
                    and node.func.value.attr == "mask"):
                users.add(f"{name}: mask.assign")
    assert users == {"layers/sparse_matrix.py", "layers/sparse_matrix.py: mask.assign"}


def test_set_matrix_sparsity_and_magnitude_go_through_replace(monkeypatch):
    layer, matrix = dense()
    calls = []
    original = SparseMatrix.replace
    monkeypatch.setattr(SparseMatrix, "replace", lambda self, *a, **k: (
        calls.append(self.name), original(self, *a, **k))[1])
    layer.set_matrix_sparsity("kernel", 0.75)
    layer.set_mask_by_magnitude("kernel", 0.5)
    layer.set_weights(layer.get_weights())
    store = {}
    layer.save_own_variables(store)
    layer.load_own_variables({k: np.asarray(v) for k, v in store.items()})
    assert calls == ["kernel"] * 4
    matrix.check()


# The finder -------------------------------------------------------------------

def test_finder_finds_matrices_in_any_nesting():
    inner = keras.Sequential([
        keras.Input((5, 3)),
        keras.layers.Bidirectional(ksr.SparseLSTM(4, sparsity=0.5,
                                                  return_sequences=True)),
        keras.layers.TimeDistributed(ksr.SparseDense(2, sparsity=0.5)),
    ], name="inner")
    stacked = keras.layers.RNN(keras.layers.StackedRNNCells(
        [ksr.SparseGRUCell(3, sparsity=0.5), ksr.SparseLSTMCell(3, sparsity=0.5)]))
    inputs = keras.Input((5, 3))
    model = keras.Model(inputs, [inner(inputs), stacked(inputs)])
    found = sparse_matrices(model)
    paths = [m.weight.path for m in found]
    assert len(found) == 2 * 2 + 1 + 2 + 2 and len(set(paths)) == len(paths)
    assert sum("backward" in p for p in paths) == 2
    assert ksr.sparse_matrices(model) == found
    assert len(sparse_layers(inner)) == 3 and len(sparse_layers(model)) == 5
    assert ksr.sparse_weights(model) == [(m.weight, m.mask) for m in found]
    with pytest.raises(ValueError, match="has no sparse layer"):
        sparse_matrices(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
    with pytest.raises(ValueError, match="not built yet"):
        sparse_matrices(ksr.SparseDense(2))
    with pytest.raises(ValueError, match="must be a keras.Model or keras.layers.Layer"):
        sparse_matrices("model")


# The import graph -------------------------------------------------------------

def _module_file(module):
    parts = module.split(".")
    if parts[0] != "keras_sparse_rnn":
        return None
    file = PACKAGE.joinpath(*parts[1:])
    if file.with_suffix(".py").is_file():
        return file.with_suffix(".py")
    if (file / "__init__.py").is_file():
        return file / "__init__.py"
    return None


def _imports(path):
    """The package modules a module imports (anywhere in it, functions
    included): `from package import submodule` is the submodule."""
    files = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            files |= {_module_file(a.name) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = _module_file(f"{node.module}.{alias.name}")
                files.add(sub or _module_file(node.module))
    files.discard(None)
    files.discard(PACKAGE / "__init__.py")
    return files


def test_no_import_circle():
    """No module imports, even inside a function, one that imports it back
    (`layers.base` <-> `model_utils` was the last)."""
    graph = {p: _imports(p) for p in PACKAGE.rglob("*.py")}

    def reaches(start, goal, seen):
        for nxt in graph.get(start, ()):
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                if reaches(nxt, goal, seen):
                    return True
        return False

    circles = sorted(str(p.relative_to(PACKAGE)) for p in graph
                     if not p.name == "__init__.py" and reaches(p, p, set()))
    assert circles == []
    layers = PACKAGE / "layers"
    below = {p for p in graph if layers in p.parents}
    for module in below:
        assert PACKAGE / "model_utils.py" not in graph[module], module
