"""Two real worker processes on 127.0.0.1 (MultiWorkerMirroredStrategy, free
ports picked at run time) train `examples/multi_worker_lm.py`: after every
topology update the masks, weights and optimizer slots are bit-identical on
both workers, for each grow mode and for gradual pruning; a cluster that loses
a worker (SIGKILL after epoch 2 of 4) and is started again ends as an
uninterrupted run."""

import glob
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = os.environ.get("KERAS_SPARSE_RNN_DATA", str(ROOT.parent / "shared" / "data"))
SCRIPT = str(ROOT / "examples" / "multi_worker_lm.py")
TINY = ["--size", "tiny", "--vocab", "200", "--steps-per-epoch", "3", "--batch-size", "8",
        "--sparsity", "0.7"]


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _cluster(args, out, kill_after=None, timeout=300):
    """Runs both workers to their end; returns their exit codes. Kills every
    process it started if the time runs out or the test fails."""
    ports = _free_ports(2)
    procs = []
    try:
        for i in range(2):
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow",
                       KERAS_SPARSE_RNN_DATA=DATA, CUDA_VISIBLE_DEVICES="",
                       TF_CONFIG=json.dumps({
                           "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                           "task": {"type": "worker", "index": i}}))
            env.pop("KSR_TEST_KILL_AFTER_EPOCH", None)
            if kill_after is not None and i == 1:
                env["KSR_TEST_KILL_AFTER_EPOCH"] = str(kill_after)
            log = open(out.parent / f"{out.name}.worker{i}.log", "a")
            procs.append(subprocess.Popen(
                [sys.executable, SCRIPT, *args, "--out-dir", str(out),
                 "--dump-dir", str(out / "dump")], env=env, cwd=ROOT,
                stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + timeout
        if kill_after is not None:
            # Worker 1 dies after its epoch; the chief then waits on it in the
            # next all-reduce: stop it once its own checkpoint of that epoch
            # is in place, as a cluster that lost a worker is stopped.
            pointer = out / "checkpoints" / "latest.json"
            while time.monotonic() < deadline:
                if procs[1].poll() is not None and pointer.is_file() and json.loads(
                        pointer.read_text())["epoch"] >= kill_after:
                    break
                time.sleep(0.5)
            procs[0].kill()
        codes = [p.wait(timeout=max(1, deadline - time.monotonic())) for p in procs]
        return codes
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _logs(out):
    return "\n".join(p.read_text()[-2000:] for p in sorted(out.parent.glob(f"{out.name}.worker*.log")))


def _arrays(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _check_identical_and_sparse(out, sparsity, gradual=False):
    steps = sorted(os.path.basename(p) for p in glob.glob(str(out / "dump" / "worker0" / "*.npz")))
    assert steps == sorted(os.path.basename(p)
                           for p in glob.glob(str(out / "dump" / "worker1" / "*.npz")))
    for name in steps:
        a = _arrays(out / "dump" / "worker0" / name)
        b = _arrays(out / "dump" / "worker1" / name)
        assert set(a) == set(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name} {key}")
        weights = {k.split(":", 1)[1]: v for k, v in a.items() if k.startswith("w")}
        masks = {p[:-len("_mask")]: m for p, m in weights.items() if p.endswith("_mask")}
        assert len(masks) == 4  # embedding, LSTM kernel and recurrent kernel, softmax
        total = active = 0
        for path, mask in masks.items():
            assert np.all(weights[path][mask == 0] == 0), path
            total, active = total + mask.size, active + int(mask.sum())
        if not gradual or name == "final.npz":  # gradual pruning ends there
            assert abs(active / total - (1 - sparsity)) < 2e-3, name
    return steps


@pytest.mark.slow
@pytest.mark.parametrize("method", ["set", "rigl", "snfs", "gradual"])
def test_workers_stay_identical_after_every_update(tmp_path, method):
    out = tmp_path / method
    codes = _cluster([*TINY, "--method", method, "--epochs", "2"], out)
    assert codes == [0, 0], _logs(out)
    steps = _check_identical_and_sparse(out, 0.7, gradual=method == "gradual")
    updates = [s for s in steps if s.startswith("step")]
    # set/rigl/snfs: one update at the end of epoch 1 (stop at the end of
    # training); gradual (6 planned steps: frequency 1, end step 4): after
    # steps 1, 2 and 3 it prunes for the step about to run (tfmot's count).
    assert updates == (["step3.npz"] if method != "gradual" else
                       [f"step{s}.npz" for s in (1, 2, 3)])
    assert "final.npz" in steps


@pytest.mark.slow
def test_cluster_killed_after_epoch_2_resumes_to_the_uninterrupted_result(tmp_path):
    args = [*TINY, "--method", "rigl", "--epochs", "4"]
    whole = tmp_path / "whole"
    assert _cluster(args, whole) == [0, 0], _logs(whole)
    run = tmp_path / "killed"
    codes = _cluster(args, run, kill_after=2)
    assert codes[1] == -signal.SIGKILL and codes[0] != 0, _logs(run)
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["epoch"] == 2
    assert not (run / "history.json").exists()
    # Nothing half-written: one complete checkpoint folder per worker.
    for folder in ("checkpoints", "checkpoints_worker1"):
        names = sorted(p.name for p in (run / folder).iterdir())
        assert names == ["epoch-2", "latest.json"], (folder, names)
    assert _cluster(args, run) == [0, 0], _logs(run)
    assert json.loads((run / "history.json").read_text())["resumed_at_epoch"] == 2
    for worker in ("worker0", "worker1"):
        want = _arrays(whole / "dump" / worker / "final.npz")
        got = _arrays(run / "dump" / worker / "final.npz")
        assert set(want) == set(got)
        for key in want:
            np.testing.assert_array_equal(want[key], got[key], err_msg=key)


REFUSALS = r'''
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, keras_sparse_rnn as ksr

def lm():
    return keras.Sequential([keras.Input((6,), dtype="int32"),
                             ksr.SparseEmbedding(24, 8, sparsity=0.5, mask_seed=1),
                             ksr.SparseLSTM(8, sparsity=0.7, mask_seed=2, return_sequences=True),
                             ksr.SparseDense(24, sparsity=0.5, mask_seed=3)])

x = np.random.default_rng(0).integers(0, 24, (16, 6)).astype("int32")
y = np.roll(x, -1, 1)
loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = lm()
    optimizer = keras.optimizers.SGD(0.1)
dst = ksr.DynamicSparsity(0.3, grow="gradient", update_every_steps=1,
                          schedule="constant").attach(model, optimizer)
sharded = next(iter(strategy.experimental_distribute_dataset(
    tf.data.Dataset.from_tensor_slices((x, y)).batch(8))))
assert isinstance(sharded[0], tf.distribute.DistributedValues)
for kwargs in ({"loss_fn": loss, "batch": sharded},
               {"gradients": [strategy.run(lambda: tf.zeros(v.shape)) for v in
                              model.trainable_variables]}):
    try:
        dst.update_topology(**kwargs)
    except ValueError as e:
        assert "per-replica values" in str(e), e
    else:
        raise SystemExit(f"not refused: {list(kwargs)}")
record = dst.update_topology(loss_fn=loss, batch=(x[:8], y[:8]))  # the same on every worker
assert record["pruned"] == record["grown"] > 0
mw = tf.distribute.MultiWorkerMirroredStrategy()  # no TF_CONFIG: one local worker
with mw.scope():
    model = lm()
    model.compile(keras.optimizers.SGD(0.1), loss)
try:
    model.fit(x, y, epochs=1, verbose=0, callbacks=[ksr.DynamicSparsity(
        grow="gradient", grow_data=tf.data.Dataset.from_tensor_slices((x, y)).batch(8))])
except ValueError as e:
    assert "grow_data is a tf.data.Dataset under MultiWorkerMirroredStrategy" in str(e), e
else:
    raise SystemExit("dataset grow_data not refused")
print("refused")
'''


@pytest.mark.slow
def test_grow_signals_that_could_differ_between_workers_are_refused(tmp_path):
    result = subprocess.run([sys.executable, "-c", REFUSALS], capture_output=True,
                            text=True, timeout=300, cwd=ROOT,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
                                     CUDA_VISIBLE_DEVICES=""))
    assert result.returncode == 0 and "refused" in result.stdout, result.stderr[-3000:]


@pytest.mark.slow
def test_one_worker_custom_loop_equals_model_fit(tmp_path, method="rigl"):
    """The multi-worker loop on one machine trains as `model.fit` does."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_SPARSE_RNN_DATA=DATA,
               CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    outs = {}
    for mode in ("loop", "fit"):
        out = tmp_path / mode
        result = subprocess.run(
            [sys.executable, SCRIPT, *TINY, "--method", method, "--epochs", "2",
             "--out-dir", str(out), "--dump-dir", str(out / "dump"),
             *(["--fit"] if mode == "fit" else [])],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        outs[mode] = out
    for name in ("step3.npz", "final.npz"):
        loop = _arrays(outs["loop"] / "dump" / "worker0" / name)
        fit = _arrays(outs["fit"] / "dump" / "worker0" / name)
        loop_w = {k.split(":", 1)[1]: v for k, v in loop.items() if k.startswith("w")}
        fit_w = {k.split(":", 1)[1]: v for k, v in fit.items() if k.startswith("w")}
        assert set(loop_w) == set(fit_w)
        for path, value in loop_w.items():
            if path.endswith("_mask"):
                np.testing.assert_array_equal(value, fit_w[path], err_msg=path)
            else:
                np.testing.assert_allclose(value, fit_w[path], rtol=1e-4, atol=1e-6,
                                           err_msg=path)
