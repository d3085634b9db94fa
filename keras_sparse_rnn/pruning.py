"""Gradual magnitude pruning (Zhu & Gupta 2017): the dense-to-sparse baseline.

`GradualPruning` is a callback that prunes the sparse layers of this package
(`SparseLSTM`, `SparseLSTMCell`, `SparseDense`, `SparseEmbedding`, ...) on the
schedule of tfmot's `PolynomialDecay`: the same sparsity at the same steps,
with the same rounding of the number of weights kept. It is the baseline a
sparse-from-scratch run (static masks, or `DynamicSparsity`) is compared to:
it starts dense (build the layers with `sparsity=0.0`) and ends at
`final_sparsity`, so it pays dense training costs for most of the run.

tfmot itself works only with `tf_keras` (Keras 2) and must not be imported
here: importing it switches `tf.keras` to `tf_keras` for the whole process.
`keras_sparse_rnn.dst.schedules` repeats its schedule op for op instead.
"""

import numpy as np

from keras_sparse_rnn import masks as masks_lib
from keras_sparse_rnn.base_updater import BaseUpdater
from keras_sparse_rnn.dst import schedules
from keras_sparse_rnn.model_utils import sparse_layers, sparse_matrices
from keras_sparse_rnn.validation import check_fraction, check_int, check_verbose


def kept_count(size, sparsity):
    """Number of weights (or blocks) tfmot keeps of `size` at `sparsity`.

    `max(round(float32(size) * (1 - float32(sparsity))), 1)` in float32,
    rounding half to even, as tfmot's `Pruning._update_mask` (`tf.round`).
    """
    size = check_int(size, "size", minimum=1)
    one_minus = np.float32(1.0) - np.float32(sparsity)
    return max(int(np.rint(np.float32(size) * one_minus)), 1)


def _record_sparsity(layer, name, count, size):
    """Sets the layer's configured sparsity of `name` to match `count`.

    The config and the checks on load (`SparseLayerMixin.load_own_variables`)
    expect `round((1 - s) * size)` active weights (or blocks).
    """
    sparsity = masks_lib.sparsity_of_count(size, count)
    if sparsity is None:
        raise RuntimeError(
            f"Layer '{layer.name}': no sparsity gives {count} of {size}"
        )
    layer.set_configured_sparsity(name, sparsity)


def prune_to_sparsity(matrix, sparsity):
    """Prunes the smallest-|w| active weights of one sparse matrix.

    Keeps `kept_count(size, sparsity)` weights (blocks, for a block-sparse
    matrix, ranked by their mean |w| as tfmot's `block_pooling_type="AVG"`)
    among those now active; pruned weights become exactly zero. A matrix that
    already has fewer active weights is left as it is: pruning never regrows.
    Ties are broken by position, so the count is always exact (tfmot keeps
    every weight tied with the threshold). A matrix of constant fan-in blocks
    keeps `kept_count(block_rows, sparsity)` blocks in each block column.

    Args:
        matrix: a `SparseMatrix` (`keras_sparse_rnn.sparse_matrices(model)`).
        sparsity: float in [0, 1).

    Returns:
        The number of weights kept.
    """
    sparsity = check_fraction(sparsity, "sparsity")
    weight = np.asarray(matrix.weight.numpy())
    mask = np.asarray(matrix.mask.numpy())
    block = matrix.block_shape
    # A constant fan-in matrix keeps its count in every block column: each
    # column is pruned on its own, to the count of its block rows, blocks
    # ranked by their mean |w| (padding aside).
    columns = masks_lib.is_constant_fan_in(block)
    if columns:
        sums, sizes = masks_lib.fan_in_block_sums(np.abs(weight), block[0], matrix.gates)
        score = sums / sizes
        grid_mask = masks_lib.fan_in_grid(mask, block[0], matrix.gates)
    else:
        block_size = int(np.prod(block)) if block else 1
        score = masks_lib.block_reduce(np.abs(weight), block) / block_size
        grid_mask = masks_lib.block_reduce(mask, block) / block_size
    size = grid_mask.shape[0] if columns else grid_mask.size
    groups = (list(zip(score.T, grid_mask.T)) if columns
              else [(score.reshape(-1), grid_mask.reshape(-1))])
    active = int(np.count_nonzero(groups[0][1]))
    keep = min(kept_count(size, sparsity), active)
    if keep == active:
        return int(np.count_nonzero(mask))
    # The active weights (blocks) of largest score, exactly `keep` of them;
    # equal scores are kept in the order of their position (stable).
    new_groups = [masks_lib.top_k_mask(np.where(group_mask > 0, group_score, -1.0),
                                       keep).astype(mask.dtype)
                  for group_score, group_mask in groups]
    if columns:
        new_mask = masks_lib.expand_fan_in_grid(
            np.stack(new_groups, axis=1), mask.shape, block[0], matrix.gates)
    else:
        new_mask = masks_lib.expand_blocks(
            new_groups[0].reshape(grid_mask.shape), block)
    matrix.replace(new_mask, weight * new_mask)  # the one write path
    _record_sparsity(matrix.layer, matrix.name, keep, size)
    return int(np.count_nonzero(new_mask))


class GradualPruning(BaseUpdater):
    """Dense-to-sparse magnitude pruning on tfmot's `PolynomialDecay` schedule.

    Every sparse matrix of the model (found like `sparse_weights(model)`) is
    pruned to the sparsity `polynomial_decay_sparsity` gives, every
    `frequency` steps from `begin_step` through `end_step`
    (`dst.schedules.last_pruning_step`). At each pruning step the
    smallest-|w| active weights go (a block-sparse matrix prunes whole
    blocks), exactly
    `kept_count(size, sparsity)` stay, and the pruned weights are zero from
    then on (the layers' mask constraint). Biases are never pruned. This is
    the baseline of Zhu & Gupta (2017),
    `s_t = s_f + (s_i - s_f) * (1 - (t - t_0) / (t_end - t_0)) ** power`,
    with the schedule, step counting and rounding of tfmot's
    `prune_low_magnitude` + `PolynomialDecay` + `UpdatePruningStep`:

    - tfmot's training step t counts from 1 and the mask of step t is computed
      from the weights before step t's update. Here, at the end of each batch
      (and at the start of training) the callback computes the masks for the
      step about to run, `t = optimizer.iterations + 1`, from the same
      weights: the masks in effect at each step are tfmot's.
    - With `steps_per_execution > 1` batch callbacks fire once per chunk;
      pruning steps inside a chunk are applied at its end, at the sparsity of
      the latest one (at most `steps_per_execution - 1` steps late).
    - The step is `optimizer.iterations`, saved with the optimizer, so a
      model saved and loaded continues the schedule where it was; the
      callback itself has no state to save.
    - Each matrix's configured sparsity (`layer.sparsity[name]`) follows its
      count, so `model.save` and `keras.models.load_model` work at any point.
      Weights-only files (`save_weights`, `BackupAndRestore`) hold no
      configuration: the callback makes the sparse layers of its model take
      each matrix's sparsity from the mask they load
      (`take_sparsity_from_loaded_masks`), so a run killed mid-training
      resumes into a model freshly built at the initial sparsity, whatever
      the order of the callbacks. Without the callback such a load refuses
      masks whose counts differ from the layers' configuration.

    Build the sparse layers with `sparsity=0.0` for the dense start. A layer
    built sparser than the schedule's value keeps its mask until the
    schedule passes it (pruning never regrows). A matrix with a per-gate
    sparsity list is pruned as one matrix, as tfmot does, and its sparsity
    becomes one float.

    Args:
        final_sparsity: float in [0, 1), the sparsity at `end_step`.
        initial_sparsity: float in [0, `final_sparsity`], the sparsity the
            first pruning step applies. Defaults to `0.0`.
        begin_step: int >= 0, first step that may prune. Defaults to `0`
            (whose first pruning step is then `frequency`: tfmot never prunes
            at step 0).
        end_step: int > `begin_step`, last step that may prune; `None` means
            the end of the planned training (`epochs * steps` of the first
            `fit` call), fixed at its start. If `end_step - begin_step` is not
            a multiple of `frequency`, `final_sparsity` is never applied (as
            in tfmot).
        frequency: int >= 1, prune every `frequency` steps. Defaults to `100`.
        power: number > 0, the exponent of the decay. Defaults to `3`.
        verbose: 0 (or False) silent; 1, 2 or True print a line per pruning step.

    Example:

    ```python
    model = keras.Sequential([
        keras.Input((35,), dtype="int32"),
        SparseEmbedding(10000, 200, sparsity=0.0),
        SparseLSTM(200, sparsity=0.0, return_sequences=True),
        SparseDense(10000, sparsity=0.0),
    ])
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=10, callbacks=[
        GradualPruning(0.8, begin_step=1000, end_step=20000, frequency=100)])
    ```
    """

    def __init__(self, final_sparsity, initial_sparsity=0.0, begin_step=0,
                 end_step=None, frequency=100, power=3, verbose=0):
        super().__init__()
        (self.final_sparsity, self.initial_sparsity, self.begin_step,
         self.end_step, self.power) = schedules.check_pruning_schedule(
            final_sparsity, initial_sparsity, begin_step, end_step, power)
        self.frequency = check_int(frequency, "frequency", minimum=1)
        self.verbose = check_verbose(verbose)
        self._last_step = None
        self._sparsity = None
        self._matrices = None  # set by `_set_up` (`BaseUpdater`'s life cycle)

    def get_config(self):
        return {
            "final_sparsity": self.final_sparsity,
            "initial_sparsity": self.initial_sparsity,
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "frequency": self.frequency,
            "power": self.power,
            "verbose": self.verbose,
        }

    def set_model(self, model):
        super().set_model(model)
        # A checkpoint of this run holds masks pruned further than a freshly
        # built model's: its layers take their sparsity from what they load.
        for layer in sparse_layers(model):
            layer.take_sparsity_from_loaded_masks()

    def sparsity_at(self, step):
        """The schedule's sparsity at `step` (`polynomial_decay_sparsity`)."""
        if self.end_step is None:
            raise ValueError(
                "end_step is None and is fixed at the start of training; "
                "pass end_step to query the schedule before that"
            )
        return schedules.polynomial_decay_sparsity(
            step, final_sparsity=self.final_sparsity, end_step=self.end_step,
            initial_sparsity=self.initial_sparsity,
            begin_step=self.begin_step, power=self.power)

    # The life cycle is `BaseUpdater`'s: these are its parts -----------------

    def _set_up(self, model):
        self._matrices = sparse_matrices(model)
        self._setup_model = model

    def _resolve_steps(self, steps):
        """Fixes `end_step=None` at the planned end of training."""
        if self.end_step is not None:
            return
        planned = steps.required_total("end_step")
        if planned <= self.begin_step:
            raise ValueError(
                f"end_step=None resolved to the planned {planned} steps, "
                f"which is not > begin_step ({self.begin_step})"
            )
        self.end_step = int(planned)

    def _begin(self):
        self._maybe_prune()  # the masks of the first step about to run

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)  # sets up an unbuilt model
        self._maybe_prune()

    def step_end(self):
        """Call after each optimizer step of a custom loop (see `attach`):
        prunes when the schedule says so. Returns the sparsity applied, or
        None when this step did not prune."""
        if self._matrices is None or self._optimizer is None:
            raise RuntimeError("step_end needs attach(model, optimizer) first "
                               "(in model.fit the callback runs by itself)")
        before = self._last_step
        self._maybe_prune()
        return self._sparsity if self._last_step != before else None

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._sparsity is not None:
            logs["pruning_sparsity"] = self._sparsity

    def _maybe_prune(self):
        # The step about to run, counted as tfmot does (from 1).
        step = self._iterations() + 1
        last = schedules.last_pruning_step(step, self.begin_step, self.end_step,
                                  self.frequency)
        if last is None or last == self._last_step:
            return
        sparsity = self.sparsity_at(last)
        kept = total = 0
        for matrix in self._matrices:
            kept += prune_to_sparsity(matrix, sparsity)
            total += int(np.prod(matrix.weight.shape))
        self._last_step = last
        self._sparsity = sparsity
        if self.verbose:
            print(f"GradualPruning: step {last}, sparsity {sparsity:.4f}, "
                  f"{kept} of {total} sparse-matrix weights kept")
