import keras

from keras_sparse_rnn import SparseDense, SparseEmbedding, SparseLSTMCell, sparsity_summary


def test_counts_by_hand():
    model = keras.Sequential([
        keras.Input((5,), dtype="int32"),
        SparseEmbedding(20, 8, sparsity=0.5, mask_seed=0),
        keras.layers.RNN(SparseLSTMCell(6, sparsity=0.7, mask_seed=1)),
        SparseDense(20, sparsity=0.5, mask_seed=2),
    ])
    lines = []
    s = sparsity_summary(model, print_fn=lines.append)
    assert [(m["name"], m["shape"], m["active"]) for m in s.matrices] == [
        ("embeddings", (20, 8), 80),
        ("kernel", (8, 24), 58),            # round(0.3 * 192)
        ("recurrent_kernel", (6, 24), 43),  # round(0.3 * 144)
        ("kernel", (6, 20), 60),
    ]
    # Active weights plus the dense biases (24 + 20).
    assert s.total_params == 80 + 58 + 43 + 24 + 60 + 20 == 285
    assert s.dense_params == 160 + 192 + 144 + 24 + 120 + 20
    # 2 FLOPs per active weight per token; the embedding is a lookup.
    assert s.forward_flops == 2 * (58 + 43) + 2 * 60 == 322
    assert s.dense_forward_flops == 2 * (192 + 144) + 2 * 120
    assert s.training_flops == 3 * 322
    assert [l["sparse_flops"] for l in s.layers] == [0, 202, 120]
    assert "training FLOPs/token: 966 sparse, 2,736 dense" in lines[0]
    assert s.sparsity == 1 - (80 + 58 + 43 + 60) / (160 + 192 + 144 + 120)


def test_plain_keras_layers_are_counted_dense():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
                              SparseDense(2, sparsity=0.5, mask_seed=0)])
    s = sparsity_summary(model, print_fn=None)
    assert s.total_params == 12 + 3 + 3 + 2
    assert s.forward_flops == 2 * 12 + 2 * 3


def test_matrices_on_the_block_path_are_marked():
    # 16 x 64 kernels in 8 x 8 blocks at 0.5: 1 of 2 blocks in each of the 8
    # block columns, 512 weights; the output layer stays masked-dense.
    cell = SparseLSTMCell(16, sparsity=0.5, block=(8, 8), mask_seed=1,
                          compute_path="blocks")
    model = keras.Sequential([keras.Input((3, 16)), keras.layers.RNN(cell),
                              SparseDense(4, sparsity=0.5, mask_seed=2)])
    lines = []
    s = sparsity_summary(model, print_fn=lines.append)
    assert [(m["name"], m["compute"]) for m in s.matrices] == [
        ("kernel", "blocks"), ("recurrent_kernel", "blocks"),
        ("kernel", "masked_dense")]
    assert s.matrices[0]["active"] == 512
    assert "2 of 3 sparse matrices compute from their active blocks" in lines[0]
    assert "theoretical" not in lines[0]
    plain = sparsity_summary(keras.Sequential([
        keras.Input((3, 16)),
        keras.layers.RNN(SparseLSTMCell(16, sparsity=0.5, mask_seed=1))]),
        print_fn=None)
    assert {m["compute"] for m in plain.matrices} == {"masked_dense"}
    assert "compute" not in str(plain).splitlines()[0]
