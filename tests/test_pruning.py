"""GradualPruning: tfmot's PolynomialDecay schedule on the sparse layers."""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_sparse_rnn import SparseDense, SparseEmbedding, SparseLSTM, sparse_weights
from keras_sparse_rnn.model_utils import sparse_layers, sparse_matrices
from keras_sparse_rnn.dst.schedules import last_pruning_step, polynomial_decay_sparsity
from keras_sparse_rnn.pruning import GradualPruning, kept_count, prune_to_sparsity

# --------------------------------------------------------------------------
# The schedule, by hand.


def is_pruning_step(step, *, begin_step, end_step, frequency):
    """Whether the schedule prunes at `step`: its last pruning step up to
    `step` is `step` itself (the library's one test, `last_pruning_step`)."""
    return last_pruning_step(step, begin_step, end_step, frequency) == step


def test_polynomial_decay_values():
    kw = dict(final_sparsity=0.8, end_step=1000)
    # (1 - 0.5) ** 3 = 0.125: 0.8 - 0.8 * 0.125 = 0.7, as a float32.
    assert polynomial_decay_sparsity(500, **kw) == float(np.float32(0.7))
    assert polynomial_decay_sparsity(0, **kw) == 0.0
    assert polynomial_decay_sparsity(1000, **kw) == float(np.float32(0.8))
    assert polynomial_decay_sparsity(5000, **kw) == float(np.float32(0.8))
    kw = dict(final_sparsity=0.9, end_step=300, initial_sparsity=0.5,
              begin_step=100, power=1)
    # Before begin_step p = 0, then linear; float32 arithmetic as tfmot's:
    # float32(s_i - s_f) * (1 - p) + float32(s_f).
    f32 = np.float32

    def linear(p):
        return float(f32(0.5 - 0.9) * (f32(1) - f32(p)) + f32(0.9))

    assert polynomial_decay_sparsity(10, **kw) == linear(0.0) == 0.4999999701976776
    assert polynomial_decay_sparsity(200, **kw) == linear(0.5)
    assert polynomial_decay_sparsity(250, **kw) == linear(0.75)
    assert polynomial_decay_sparsity(400, **kw) == linear(1.0) == float(f32(0.9))


def test_is_pruning_step_and_kept_count():
    steps = [s for s in range(0, 400)
             if is_pruning_step(s, begin_step=0, end_step=250, frequency=100)]
    # tfmot never prunes at step 0, nor at 250 (not begin + k * frequency).
    assert steps == [100, 200]
    steps = [s for s in range(0, 400)
             if is_pruning_step(s, begin_step=30, end_step=130, frequency=50)]
    assert steps == [30, 80, 130]
    # round(float32(size) * (1 - s)), half to even, at least 1.
    assert kept_count(10, 0.25) == 8     # 7.5 -> 8
    assert kept_count(30, 0.25) == 22    # 22.5 -> 22
    assert kept_count(10, 0.35) == 6     # float32(0.65) * 10 = 6.4999998
    assert kept_count(192, 0.9) == 19
    assert kept_count(100, 0.999) == 1   # never 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(final_sparsity=1.0), "final_sparsity must be in [0, 1), got 1.0"),
    (dict(final_sparsity=0.5, initial_sparsity=-0.1),
     "initial_sparsity must be in [0, 1), got -0.1"),
    (dict(final_sparsity=0.3, initial_sparsity=0.5),
     "final_sparsity must be >= initial_sparsity"),
    (dict(final_sparsity=0.5, begin_step=-1),
     "begin_step must be a non-negative int, got -1"),
    (dict(final_sparsity=0.5, begin_step=10, end_step=10),
     "end_step must be > begin_step (10), got 10"),
    (dict(final_sparsity=0.5, end_step=2.5), "end_step must be a non-negative int, got 2.5"),
    (dict(final_sparsity=0.5, end_step=10, frequency=0),
     "frequency must be a positive int, got 0"),
    (dict(final_sparsity=0.5, end_step=10, power=0),
     "power must be a number > 0, got 0"),
    (dict(final_sparsity=0.5, end_step=10, verbose=-1),
     "verbose must be a bool or an int >= 0 (0: silent), got -1"),
    (dict(final_sparsity=0.5, end_step=10, verbose=0.5),
     "verbose must be a bool or an int >= 0 (0: silent), got 0.5"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=None) as info:
        GradualPruning(**kwargs)
    assert message in str(info.value)


def test_schedule_function_needs_end_step_and_valid_step():
    with pytest.raises(ValueError, match="end_step must be an int > begin_step, got None"):
        polynomial_decay_sparsity(3, final_sparsity=0.5, end_step=None)
    with pytest.raises(ValueError, match="step must be a non-negative int, got -1"):
        polynomial_decay_sparsity(-1, final_sparsity=0.5, end_step=10)


# --------------------------------------------------------------------------
# Against tfmot itself, in its own process (importing tfmot switches tf.keras
# to tf_keras for the whole process).

_TFMOT_SCRIPT = r'''
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_impl

request = json.loads(sys.argv[1])
out = {"schedules": [], "counts": [], "masks": []}
for cfg in request["schedules"]:
    cfg = dict(cfg)
    max_step = cfg.pop("max_step")
    schedule = tfmot.sparsity.keras.PolynomialDecay(**cfg)
    values, flags = [], []
    for step in range(max_step + 1):
        should, sparsity = schedule(tf.constant(step, tf.int64))
        values.append(float(sparsity.numpy()))
        flags.append(bool(should.numpy()))
    out["schedules"].append({"values": values, "flags": flags})


def pruner(weight, schedule, step, block=(1, 1)):
    mask = tf.Variable(tf.ones_like(weight))
    threshold = tf.Variable(0.0)
    return mask, pruning_impl.Pruning(
        training_step_fn=lambda: step, pruning_vars=[(weight, mask, threshold)],
        pruning_schedule=schedule, block_size=block, block_pooling_type="AVG")

# Number of weights kept at a sparsity: tfmot's rounding.
for size, sparsity in request["counts"]:
    rng = np.random.default_rng(size)
    weight = tf.Variable(rng.permutation(size).astype("float32").reshape(1, size) + 1)
    step = tf.Variable(1, dtype=tf.int64)
    schedule = tfmot.sparsity.keras.ConstantSparsity(sparsity, 0, frequency=1)
    mask, pruning = pruner(weight, schedule, step)
    pruning.conditional_mask_update()
    out["counts"].append(int(mask.numpy().sum()))

# Whole pruning runs on a fixed weight: the mask after every pruning step.
for cfg in request["masks"]:
    cfg = dict(cfg)
    weight = tf.Variable(np.array(cfg.pop("weight"), dtype="float32"))
    block = tuple(cfg.pop("block"))
    max_step = cfg.pop("max_step")
    step = tf.Variable(0, dtype=tf.int64)
    schedule = tfmot.sparsity.keras.PolynomialDecay(**cfg)
    mask, pruning = pruner(weight, schedule, step, block)
    masks = []
    for t in range(1, max_step + 1):
        step.assign(t)
        pruning.conditional_mask_update()
        pruning.weight_mask_op()
        masks.append(mask.numpy().astype(int).ravel().tolist())
    out["masks"].append(masks)
print("RESULT" + json.dumps(out))
'''

_SCHEDULES = [
    dict(initial_sparsity=0.0, final_sparsity=0.8, begin_step=0,
         end_step=1000, power=3, frequency=100, max_step=1200),
    dict(initial_sparsity=0.3, final_sparsity=0.95, begin_step=17,
         end_step=517, power=3, frequency=7, max_step=600),
    dict(initial_sparsity=0.1, final_sparsity=0.67, begin_step=5,
         end_step=250, power=2, frequency=1, max_step=260),
    dict(initial_sparsity=0.0, final_sparsity=0.9, begin_step=0,
         end_step=333, power=1.5, frequency=10, max_step=340),
]
_COUNTS = [(size, s) for size in (6, 10, 30, 97, 192)
           for s in (0.05, 0.25, 0.35, 0.5, 0.75, 0.95, 0.999)]


def _masks_request():
    rng = np.random.default_rng(7)
    # Distinct magnitudes (tfmot keeps every weight tied with its threshold).
    w = (rng.permutation(16 * 12).reshape(16, 12) + 1.0) / 7.0
    w *= rng.choice([-1.0, 1.0], size=w.shape)
    wb = (rng.permutation(16 * 12).reshape(16, 12) + 1.0) / 3.0
    return [
        dict(weight=w.tolist(), block=[1, 1], initial_sparsity=0.0,
             final_sparsity=0.9, begin_step=3, end_step=63, power=3,
             frequency=4, max_step=70),
        dict(weight=wb.tolist(), block=[4, 1], initial_sparsity=0.2,
             final_sparsity=0.75, begin_step=0, end_step=40, power=3,
             frequency=5, max_step=45),
    ]


@pytest.fixture(scope="module")
def tfmot_reference():
    # Only looked up here: importing tfmot would switch this process's
    # tf.keras to tf_keras. CI installs the `baselines` extra.
    assert importlib.util.find_spec("tensorflow_model_optimization"), (
        "tfmot is needed for this comparison: pip install -e '.[baselines]'")
    request = dict(schedules=_SCHEDULES, counts=_COUNTS, masks=_masks_request())
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    env.pop("KERAS_BACKEND", None)
    proc = subprocess.run(
        [sys.executable, "-c", _TFMOT_SCRIPT, json.dumps(request)],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT"):])


def test_schedule_equals_tfmot_bit_for_bit(tfmot_reference):
    assert "tensorflow_model_optimization" not in sys.modules
    for cfg, ref in zip(_SCHEDULES, tfmot_reference["schedules"], strict=True):
        cfg = dict(cfg)
        max_step, frequency = cfg.pop("max_step"), cfg.pop("frequency")
        ours = [polynomial_decay_sparsity(t, **cfg) for t in range(max_step + 1)]
        assert ours == ref["values"], cfg
        flags = [is_pruning_step(t, begin_step=cfg["begin_step"],
                                 end_step=cfg["end_step"], frequency=frequency)
                 for t in range(max_step + 1)]
        # tfmot's step 0 never happens in training (its counter starts at 1).
        assert flags[1:] == ref["flags"][1:], cfg


def test_kept_count_equals_tfmot(tfmot_reference):
    assert [kept_count(size, s) for size, s in _COUNTS] == tfmot_reference["counts"]


def test_masks_equal_tfmot_step_by_step(tfmot_reference):
    for cfg, ref_masks in zip(_masks_request(), tfmot_reference["masks"], strict=True):
        cfg = dict(cfg)
        weight = np.array(cfg.pop("weight"), dtype="float32")
        block = tuple(cfg.pop("block"))
        max_step, frequency = cfg.pop("max_step"), cfg.pop("frequency")
        layer = SparseDense(weight.shape[1], sparsity=0.0, mask_seed=0,
                            use_bias=False,
                            block=None if block == (1, 1) else (block[1], block[0]))
        layer.build((None, weight.shape[0]))
        layer.kernel.assign(weight)
        spec = layer.get_sparse_weight_info()[0]
        assert len(ref_masks) == max_step, (block, len(ref_masks))
        for t in range(1, max_step + 1):
            if is_pruning_step(t, begin_step=cfg["begin_step"],
                               end_step=cfg["end_step"], frequency=frequency):
                prune_to_sparsity(spec, polynomial_decay_sparsity(t, **cfg))
            mask = layer.kernel_mask.numpy().astype(int).ravel().tolist()
            assert mask == ref_masks[t - 1], (block, t)
            assert layer.expected_active_count("kernel") == sum(mask)


# --------------------------------------------------------------------------
# Training with the callback.


def _model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((6,), batch_size=4, dtype="int32"),
        SparseEmbedding(24, 8, sparsity=0.0, mask_seed=1),
        SparseLSTM(8, sparsity=0.0, mask_seed=2, return_sequences=True),
        SparseDense(24, sparsity=0.0, mask_seed=3),
    ])


def _data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 24, size=(n, 6)).astype("int32")
    return x, np.roll(x, -1, axis=1)


class CountRecorder(keras.callbacks.Callback):
    """Active counts after each batch's callbacks: the masks of the next step."""

    def __init__(self):
        super().__init__()
        self.records = []

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        counts = [int(m.numpy().sum()) for _, m in sparse_weights(self.model)]
        self.records.append((step, counts))
        for w, m in sparse_weights(self.model):
            assert np.all(w.numpy()[m.numpy() == 0] == 0)


def _compile(model, jit_compile, steps_per_execution=1):
    model.compile(keras.optimizers.SGD(0.5, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit_compile,
                  steps_per_execution=steps_per_execution)
    assert model.jit_compile is jit_compile


def _expected_counts(model, callback, next_step):
    sizes = [int(np.prod(w.shape)) for w, _ in sparse_weights(model)]
    last = None
    for t in range(1, next_step + 1):
        if is_pruning_step(t, begin_step=callback.begin_step,
                           end_step=callback.end_step,
                           frequency=callback.frequency):
            last = t
    if last is None:
        return sizes
    s = callback.sparsity_at(last)
    return [kept_count(size, s) for size in sizes]


@pytest.mark.parametrize("jit_compile", [True, False])
def test_fit_follows_schedule_and_saves(jit_compile, tmp_path):
    model = _model()
    _compile(model, jit_compile)
    pruning = GradualPruning(0.75, initial_sparsity=0.1, begin_step=2,
                             end_step=22, frequency=4)
    recorder = CountRecorder()
    x, y = _data()
    history = model.fit(x, y, batch_size=4, epochs=3, verbose=0,
                        callbacks=[pruning, recorder])
    assert len(recorder.records) == 24
    for step, counts in recorder.records:
        # After step `step`, the masks are those tfmot uses at step + 1.
        assert counts == _expected_counts(model, pruning, step + 1), step
    # The last pruning step (22) applied the final sparsity exactly.
    sizes = [int(np.prod(w.shape)) for w, _ in sparse_weights(model)]
    final = [kept_count(size, 0.75) for size in sizes]
    assert recorder.records[-1][1] == final
    assert history.history["pruning_sparsity"][-1] == float(np.float32(0.75))
    for spec in sparse_matrices(model):
        assert spec.layer.expected_active_count(spec.name) == int(spec.mask.numpy().sum())
        assert np.all(spec.weight.numpy()[spec.mask.numpy() == 0] == 0)
    path = tmp_path / "pruned.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    for (w, m), (lw, lm) in zip(sparse_weights(model), sparse_weights(loaded), strict=True):
        np.testing.assert_array_equal(m.numpy(), lm.numpy())
        np.testing.assert_array_equal(w.numpy(), lw.numpy())
    np.testing.assert_array_equal(model.predict(x, verbose=0),
                                  loaded.predict(x, verbose=0))


def test_steps_per_execution_and_resume(tmp_path):
    x, y = _data()
    # One run of 4 epochs, masks updated at the end of each chunk of 4 steps.
    model = _model()
    _compile(model, False, steps_per_execution=4)
    pruning = GradualPruning(0.8, begin_step=0, end_step=24, frequency=6)
    recorder = CountRecorder()
    model.fit(x, y, batch_size=4, epochs=4, verbose=0, shuffle=False,
              callbacks=[pruning, recorder])
    assert [step for step, _ in recorder.records] == [4, 8, 12, 16, 20, 24, 28, 32]
    for step, counts in recorder.records:
        assert counts == _expected_counts(model, pruning, step + 1), step
    sizes = [int(np.prod(w.shape)) for w, _ in sparse_weights(model)]
    assert recorder.records[-1][1] == [kept_count(n, 0.8) for n in sizes]

    # 2 epochs, save, load, 2 more: the step comes from the saved optimizer.
    first = _model()
    _compile(first, False, steps_per_execution=4)
    first.fit(x, y, batch_size=4, epochs=2, verbose=0, shuffle=False,
              callbacks=[GradualPruning(0.8, begin_step=0, end_step=24, frequency=6)])
    first.save(tmp_path / "half.keras")
    resumed = keras.models.load_model(tmp_path / "half.keras")
    assert int(resumed.optimizer.iterations.numpy()) == 16
    resumed.fit(x, y, batch_size=4, epochs=4, initial_epoch=2, verbose=0,
                shuffle=False,
                callbacks=[GradualPruning(0.8, begin_step=0, end_step=24, frequency=6)])
    for (w, m), (rw, rm) in zip(sparse_weights(model), sparse_weights(resumed), strict=True):
        np.testing.assert_array_equal(m.numpy(), rm.numpy())
        np.testing.assert_allclose(w.numpy(), rw.numpy(), rtol=1e-5, atol=1e-6)


class _Interrupt(keras.callbacks.Callback):
    """Stops training after epoch `epoch` (0-based) has been backed up."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("interrupted")


@pytest.mark.parametrize("order", ["pruning_first", "backup_first"])
def test_backup_and_restore_resumes_into_a_fresh_dense_model(tmp_path, order):
    """A killed pruning run restarts with a model built at sparsity 0: its
    layers take the checkpoint's pruned counts, and the run ends as an
    uninterrupted one."""
    x, y = _data()

    def run(callbacks):
        model = _model()
        _compile(model, False)
        pruning = GradualPruning(0.8, begin_step=0, end_step=20, frequency=5)
        backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
        first = [pruning, backup] if order == "pruning_first" else [backup, pruning]
        history = model.fit(x, y, batch_size=4, epochs=3, verbose=0, shuffle=False,
                            callbacks=first + callbacks)
        return model, history

    with pytest.raises(RuntimeError, match="interrupted"):
        run([_Interrupt(1)])  # after epoch 2 of 3 (16 steps), backed up
    resumed, history = run([])
    assert history.epoch == [2]  # it resumed: only the third epoch ran
    whole = _model()
    _compile(whole, False)
    whole.fit(x, y, batch_size=4, epochs=3, verbose=0, shuffle=False,
              callbacks=[GradualPruning(0.8, begin_step=0, end_step=20, frequency=5)])
    assert int(resumed.optimizer.iterations.numpy()) == 24
    sizes = [int(np.prod(w.shape)) for w, _ in sparse_weights(whole)]
    assert [int(m.numpy().sum()) for _, m in sparse_weights(resumed)] == [
        kept_count(n, 0.8) for n in sizes]
    for (w, m), (rw, rm) in zip(sparse_weights(whole), sparse_weights(resumed), strict=True):
        np.testing.assert_array_equal(m.numpy(), rm.numpy())
        np.testing.assert_allclose(w.numpy(), rw.numpy(), rtol=1e-5, atol=1e-6)
    for spec in sparse_matrices(resumed):
        assert spec.layer.expected_active_count(spec.name) == int(spec.mask.numpy().sum())


def test_a_fresh_model_without_the_callback_refuses_pruned_masks(tmp_path):
    x, y = _data()
    model = _model()
    _compile(model, False)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0,
              callbacks=[GradualPruning(0.8, begin_step=0, end_step=4, frequency=2)])
    model.save_weights(tmp_path / "pruned.weights.h5")
    fresh = _model()
    _compile(fresh, False)
    with pytest.raises(ValueError, match="the mask has 38 active weights, but the "
                                         "layer's sparsity 0.0 requires exactly 192"):
        fresh.load_weights(tmp_path / "pruned.weights.h5")
    for layer in sparse_layers(fresh):
        layer.take_sparsity_from_loaded_masks()
    fresh.load_weights(tmp_path / "pruned.weights.h5")
    for (w, m), (fw, fm) in zip(sparse_weights(model), sparse_weights(fresh), strict=True):
        np.testing.assert_array_equal(m.numpy(), fm.numpy())
        np.testing.assert_array_equal(w.numpy(), fw.numpy())
    assert fresh.layers[0].sparsity == {"embeddings": 1 - 38 / 192}
    # A file refused on load changes nothing, not even the configured sparsity.
    other = _model()
    for layer in sparse_layers(other):
        layer.take_sparsity_from_loaded_masks()
    embedding = other.layers[0]
    weight, mask = fresh.layers[0].embeddings.numpy(), fresh.layers[0].embeddings_mask.numpy()
    weight[mask == 0] = 1.0
    with pytest.raises(ValueError, match="weights outside the mask must be 0"):
        embedding.load_own_variables({"0": weight, "1": mask})
    assert embedding.sparsity == 0.0
    assert int(embedding.embeddings_mask.numpy().sum()) == 192
    with pytest.raises(ValueError, match="enabled must be True or False, got 1 of type int"):
        fresh.layers[0].take_sparsity_from_loaded_masks(1)


def test_end_step_none_is_the_planned_training():
    model = _model()
    _compile(model, False)
    pruning = GradualPruning(0.5, frequency=8)
    x, y = _data()
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[pruning])
    assert pruning.end_step == 16
    sizes = [int(np.prod(w.shape)) for w, _ in sparse_weights(model)]
    assert [int(m.numpy().sum()) for _, m in sparse_weights(model)] == [
        kept_count(n, 0.5) for n in sizes]


def test_never_regrows_a_sparser_layer():
    keras.utils.set_random_seed(0)
    layer = SparseDense(10, sparsity=0.8, mask_seed=0)
    layer.build((None, 10))
    spec = layer.get_sparse_weight_info()[0]
    before = layer.kernel_mask.numpy().copy()
    assert prune_to_sparsity(spec, 0.5) == 20
    np.testing.assert_array_equal(layer.kernel_mask.numpy(), before)
    # Pruning further keeps the largest |w| among the active ones.
    w = layer.kernel.numpy()
    assert prune_to_sparsity(spec, 0.9) == 10
    kept = layer.kernel_mask.numpy() == 1
    assert np.all(before[kept] == 1)
    assert np.abs(w[kept]).min() >= np.abs(w[(before == 1) & ~kept]).max()
    assert layer.sparsity == {"kernel": 0.9}


def test_model_without_sparse_layers_is_rejected():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="has no sparse layer"):
        model.fit(np.zeros((4, 3)), np.zeros((4, 2)), verbose=0,
                  callbacks=[GradualPruning(0.5, end_step=10)])


# The schedule the examples and the tfmot baseline share --------------------

@pytest.mark.parametrize("total,expected", [
    (1300, (13, 975)), (1000, (10, 750)), (4200, (42, 3150)), (250, (2, 186)),
    (20, (1, 15)), (1, (1, 1)),
])
def test_gradual_schedule_end_step_is_a_pruning_step(total, expected):
    from keras_sparse_rnn.dst.schedules import gradual_schedule

    assert gradual_schedule(total) == expected
    frequency, end_step = expected
    if end_step > 1:
        assert is_pruning_step(end_step, begin_step=0, end_step=end_step,
                               frequency=frequency)


def test_gradual_mean_density_matches_the_schedule():
    from keras_sparse_rnn.dst.schedules import (gradual_schedule, mean_density,
                                                polynomial_decay_sparsity)

    # 20 steps: prune every step through step 15; the mask of step t holds at t.
    expected = np.mean([1 - polynomial_decay_sparsity(
        min(t, 15), final_sparsity=0.75, end_step=15) for t in range(1, 21)])
    np.testing.assert_allclose(mean_density(0.75, 20, 20), expected,
                               rtol=1e-6)
    assert mean_density(0.75, 20, 0) == 1.0
    with pytest.raises(ValueError, match="total_steps must be a positive int, got 0"):
        gradual_schedule(0)
    with pytest.raises(ValueError, match="final_sparsity must be in"):
        mean_density(1.0, 20, 5)
