"""DynamicSparsity under tf.distribute.MirroredStrategy on two logical CPUs
(also with an LSTM on the block path).

Logical devices must be configured before TensorFlow initializes, so the
check runs in a fresh process. The train step is not XLA-compiled here:
Keras' `jit_compile=True` under MirroredStrategy on logical CPU devices fails
for any model in this TensorFlow (a variable "located in device CPU:1" read
"from device CPU:0"), with or without this callback; the topology update
itself is XLA-compiled as always.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import keras_sparse_rnn as ksr
    from keras_sparse_rnn.dst import DynamicSparsity, optimizer_slots

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    rng = np.random.default_rng(0)
    x = rng.integers(0, 24, (32, 6)).astype("int32")
    y = np.roll(x, -1, 1)

    def replicas(variable):
        return [v.numpy() for v in variable.value.values]

    class Check(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.old = [replicas(m)[0] for _, m in ksr.sparse_weights(self.model)]
            self.report = {"newly": 0, "slots_checked": 0}

        def on_epoch_end(self, epoch, logs=None):
            for (w, m), old in zip(ksr.sparse_weights(self.model), self.old):
                new = replicas(m)[0]
                newly = (new == 1) & (old == 0)
                self.report["newly"] += int(newly.sum())
                for _, slot in optimizer_slots.slot_variables(
                        self.model.optimizer, w):
                    for s in replicas(slot):
                        assert np.all(s[newly] == 0)
                    self.report["slots_checked"] += 1
            self.old = [replicas(m)[0] for _, m in ksr.sparse_weights(self.model)]

    out = {}
    for key in ["random", "gradient", "momentum", "gradient_blocks"]:
        grow = key.split("_")[0]
        # The last: RigL with the LSTM on the block path (4 x 4 blocks of
        # constant fan-in, 2 of 4 per block column).
        cell = (ksr.SparseLSTMCell(16, sparsity=0.5, block=(4, 4), mask_seed=2,
                                   compute_path="blocks") if key.endswith("blocks")
                else ksr.SparseLSTMCell(8, sparsity=0.7, mask_seed=2))
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = keras.Sequential([
                keras.Input((6,), dtype="int32"),
                ksr.SparseEmbedding(24, cell.units, sparsity=0.5, mask_seed=1),
                keras.layers.RNN(cell, return_sequences=True),
                ksr.SparseDense(24, sparsity=0.5, mask_seed=3)])
            model.compile(keras.optimizers.SGD(0.5, momentum=0.9),
                          keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          jit_compile=False)
        initial = [replicas(m)[0] for _, m in ksr.sparse_weights(model)]
        cb = DynamicSparsity(0.4, grow=grow, schedule="constant",
                             grow_data=None if grow == "random" else (x[:8], y[:8]))
        check = Check()
        model.fit(x, y, batch_size=8, epochs=3, callbacks=[cb, check], verbose=0)
        result = {"updates": len(cb.updates), "kinds": [], "same": [],
                  "zero_outside": [], "counts": [], "changed": [],
                  **check.report}
        for (w, m), first in zip(ksr.sparse_weights(model), initial):
            masks = replicas(m)
            weights = replicas(w)
            result["kinds"].append(type(m.value).__name__)
            result["same"].append(len(masks) == 2 and all(
                np.array_equal(masks[0], v) for v in masks))
            result["zero_outside"].append(all(
                np.all(a[b == 0] == 0) for a, b in zip(weights, masks)))
            result["counts"].append([int(first.sum()), int(masks[1].sum())])
            result["changed"].append(bool(np.any(masks[0] != first)))
        if key.endswith("blocks"):
            result["on_blocks"] = model.layers[1].cell.block_path_weights()
            result["fan_in"] = [sorted(set(ksr.masks.fan_in_counts(
                replicas(m)[0], (4, 4), 4).tolist()))
                for _, m in ksr.sparse_weights(model.layers[1])]
        out[key] = result
    print("RESULT " + json.dumps(out))
""")


@pytest.mark.slow
def test_masks_identical_on_every_replica():
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
    results = json.loads(line[len("RESULT "):])
    for grow, r in results.items():
        assert r["updates"] == 2, grow
        assert r["kinds"] == ["MirroredVariable"] * 4, grow
        assert r["same"] == [True] * 4, grow
        assert r["zero_outside"] == [True] * 4, grow
        assert all(a == b for a, b in r["counts"]), grow
        assert r["changed"] == [True] * 4, grow
        assert r["newly"] > 0 and r["slots_checked"] == 4 * 3, grow
    blocks = results["gradient_blocks"]
    assert blocks["on_blocks"] == ["kernel", "recurrent_kernel"]
    assert blocks["fan_in"] == [[2], [2]]
