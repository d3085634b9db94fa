"""Every Python code block of the README runs, in order, in one namespace (as a
user pastes them into one session), on the real PTB data; and its export
command line runs on the model the first block saved. Training is shortened by
the substitutions below, each of which must apply (a README change that drops
one fails here, so the test keeps running what the README shows)."""

import os
import pathlib
import re
import subprocess
import sys
import warnings

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# (text in the README, what the test runs instead): only the amount of training.
SHORTER = [
    ("model.fit(train_ds, epochs=13, validation_data=valid_ds,",
     "model.fit(train_ds.take(2), epochs=1, validation_data=valid_ds.take(2),"),
    ("model.fit(train_ds, epochs=13, callbacks=[rigl], shuffle=False)",
     "model.fit(train_ds.take(4), epochs=2, callbacks=[rigl], shuffle=False)"),
]


def test_quick_start_says_how_plain_python_finds_the_data():
    """Issue 21: the quick start named neither `make install-test` nor the
    variable that plain Python (not make) needs to find the shared data."""
    text = (ROOT / "README.md").read_text()
    start = text.index("## Quick start")
    quick = text[start:text.index("\n## ", start + 1)]
    assert "make install-test" in quick
    assert "export KERAS_SPARSE_RNN_DATA=" in quick
    assert "plain Python" in quick


def python_blocks(text):
    """The ```python blocks, dedented (some sit in list items)."""
    blocks = []
    for match in re.finditer(r"^( *)```python\n(.*?)^\1```", text, re.S | re.M):
        indent = len(match.group(1))
        blocks.append("\n".join(line[indent:] for line in match.group(2).splitlines()))
    return blocks


@pytest.mark.slow
def test_readme_code_blocks_run(tmp_path, monkeypatch, capsys):
    import keras

    text = (ROOT / "README.md").read_text()
    for old, new in SHORTER:
        assert old in text, f"the README no longer has {old!r}"
        text = text.replace(old, new)
    blocks = python_blocks(text)
    assert len(blocks) >= 7
    monkeypatch.chdir(tmp_path)
    namespace = {}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for i, block in enumerate(blocks):
                exec(compile(block, f"README.md python block {i + 1}", "exec"),
                     namespace)
    finally:
        keras.config.set_dtype_policy("float32")
    # Issue 21: fit's default shuffle=True warned that it ignores a tf.data.Dataset.
    assert not [w for w in caught if "`shuffle=True` was passed" in str(w.message)]
    printed = capsys.readouterr().out
    assert "[4, 8, 12]" in printed  # the custom loop's updates, as shown
    # Issue 19: the block path's example, on it and at constant fan-in.
    assert "['kernel', 'recurrent_kernel']\n[2]\n" in printed
    assert "computes in mixed_bfloat16" in printed
    assert "{'train': 9595, 'test': 1067}" in printed  # the MR folds, as shown
    # Issue 21: the corpora as distributed (CR, AG News, TREC's raw files).
    for shown in ("{'train': 4}", "['1', '2', '3', '4']",
                  "['ABBR', 'DESC', 'ENTY', 'HUM', 'LOC', 'NUM']",
                  "['what', 'is', 'the', 'capital', 'of', 'france', '?']"):
        assert shown in printed
    assert "next word: " in printed  # the streaming file, token by token
    assert (tmp_path / "lm.keras").is_file() and (tmp_path / "lm.tflite").is_file()

    command = re.search(r"^python -m keras_sparse_rnn\.export ([^\[\n]+)", text, re.M)
    assert command, "the README's export command"
    result = subprocess.run([sys.executable, "-m", "keras_sparse_rnn.export",
                             *command.group(1).split()], cwd=tmp_path,
                            capture_output=True, text=True, timeout=900,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "batch 1" in result.stdout


@pytest.mark.slow
def test_architecture_code_blocks_run(capsys):
    """ARCHITECTURE.md's worked examples (a new DST criterion, a new grow
    signal, a mask change through the one write path) run as written, in
    one namespace, and print what they say."""
    import keras

    blocks = python_blocks((ROOT / "ARCHITECTURE.md").read_text())
    assert len(blocks) == 3
    keras.backend.clear_session()
    namespace = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"ARCHITECTURE.md python block {i + 1}", "exec"), namespace)
    assert capsys.readouterr().out.splitlines()[-2:] == ["[True, True]", "True"]


def test_no_library_module_over_500_lines():
    """ARCHITECTURE.md's convention (issue 22): a longer user's reference goes
    to docs/, as DynamicSparsity's does (docs/dst.md)."""
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines())
             for p in (ROOT / "keras_sparse_rnn").rglob("*.py")}
    assert sizes and not {p: n for p, n in sizes.items() if n > 500}


def test_dynamic_sparsity_reference_is_in_docs():
    from keras_sparse_rnn import DynamicSparsity

    doc = DynamicSparsity.__doc__
    assert "docs/dst.md" in doc and "Args:" in doc and "Example:" in doc
    text = (ROOT / "docs" / "dst.md").read_text()
    for heading in ("## Life cycle", "## One update", "## When", "## Custom optimizers",
                    "## Logs", "## Resuming"):
        assert heading in text
    assert "`callback.updates`" in text and "`callback.update_count`" in text
