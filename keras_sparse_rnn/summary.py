"""The sparsity report: active weights, parameters and FLOPs per token."""

import dataclasses

import numpy as np

from keras_sparse_rnn._keras.layers import flatten_layers, own_trainable_variables
from keras_sparse_rnn.layers.sparse_matrix import sparse_matrices

# Training costs about three forward passes: the forward product, the gradient
# with respect to the activations and the one with respect to the weights.
TRAINING_FLOPS_FACTOR = 3


@dataclasses.dataclass
class SparsitySummary:
    """What `sparsity_summary` returns.

    Attributes:
        matrices: one dict per sparse matrix: layer, name, shape, size,
            active, density, and compute: "blocks" when the layer computes
            its products from the active blocks (`compute_path`; then its
            sparse FLOPs are the ones that run), else "masked_dense" (the
            sparse FLOPs are theoretical: it runs at dense speed).
        layers: one dict per layer with parameters: layer, dense_flops and
            sparse_flops (forward FLOPs per token of its matrix products).
        total_params: parameters that are trained (active sparse weights plus
            every dense weight and bias).
        dense_params: parameters of the same model with dense matrices.
        forward_flops, dense_forward_flops: forward FLOPs per token.
        training_flops, dense_training_flops: 3 x the forward FLOPs.
    """

    matrices: list
    layers: list
    total_params: int
    dense_params: int
    forward_flops: int
    dense_forward_flops: int
    training_flops: int
    dense_training_flops: int

    @property
    def sparsity(self):
        """Fraction of zeros over all sparse matrices."""
        size = sum(m["size"] for m in self.matrices)
        return 1.0 - sum(m["active"] for m in self.matrices) / size

    def __str__(self):
        on_blocks = [m for m in self.matrices if m["compute"] == "blocks"]
        rows = [("layer", "weight", "shape", "active", "density")
                + (("compute",) if on_blocks else ())]
        for m in self.matrices:
            rows.append((m["layer"], m["name"], "x".join(map(str, m["shape"])),
                         f"{m['active']:,}", f"{m['density']:.4f}")
                        + ((m["compute"],) if on_blocks else ()))
        lines = _table(rows)
        lines.append("")
        rows = [("layer", "fwd FLOPs/token dense", "fwd FLOPs/token sparse")]
        for l in self.layers:
            rows.append((l["layer"], f"{l['dense_flops']:,}",
                         f"{l['sparse_flops']:,}"))
        lines += _table(rows)
        lines += [
            "",
            f"parameters: {self.total_params:,} trained of "
            f"{self.dense_params:,} dense "
            f"({self.total_params / self.dense_params:.3f}); "
            f"sparsity of the sparse matrices {self.sparsity:.4f}",
            f"forward FLOPs/token: {self.forward_flops:,} sparse, "
            f"{self.dense_forward_flops:,} dense",
            f"training FLOPs/token: {self.training_flops:,} sparse, "
            f"{self.dense_training_flops:,} dense "
            + ("(theoretical; the masked-dense kernels run at dense speed)"
               if not on_blocks else
               f"({len(on_blocks)} of {len(self.matrices)} sparse matrices "
               "compute from their active blocks; the others run masked-dense, "
               "at dense speed)"),
        ]
        return "\n".join(lines)


def _table(rows):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return out


def _is_lookup_table(layer, variable):
    import keras

    return isinstance(layer, keras.layers.Embedding) and variable.path.endswith(
        ("embeddings", "_embeddings"))


def sparsity_summary(model, print_fn=print):
    """Reports the sparse matrices of a model and its cost per token.

    For each sparse matrix: its layer, name, shape, active count and density.
    For each layer: forward FLOPs per token of its matrix products, dense and
    sparse, counted as the sparse-training literature does (2 FLOPs per
    active weight per token; an embedding row is read, not multiplied: 0;
    element-wise gate work and bias additions are small and not counted).
    Totals: parameters (biases and other dense weights included) and forward
    and training (3 x forward) FLOPs per token. An RNN's matrices are used
    once per token per micro-step, so per-token is per time step.

    Args:
        model: a built model with sparse layers.
        print_fn: called with the table as a string; `None` prints nothing.

    Returns:
        A `SparsitySummary`.
    """
    found = sparse_matrices(model)
    by_variable = {id(m.weight): m for m in found}
    mask_ids = {id(m.mask) for m in found}
    matrices = []
    for s in found:
        active = int(np.asarray(s.mask.numpy()).sum())
        size = int(np.prod(s.weight.shape))
        matrices.append({
            "layer": s.layer.path if hasattr(s.layer, "path") else s.layer.name,
            "name": s.name,
            "shape": tuple(int(d) for d in s.weight.shape),
            "size": size,
            "active": active,
            "density": active / size,
            "compute": ("blocks" if s.name in getattr(
                s.layer, "block_path_weights", list)() else "masked_dense"),
        })

    layers = []
    total = dense_total = flops = dense_flops = 0
    for layer in flatten_layers(model, include_self=False):
        own = [v for v in own_trainable_variables(layer) if id(v) not in mask_ids]
        if not own:
            continue
        layer_dense = layer_sparse = 0
        for v in own:
            size = int(np.prod(v.shape))
            matrix = by_variable.get(id(v))
            active = (int(np.asarray(matrix.mask.numpy()).sum())
                      if matrix is not None else size)
            total += active
            dense_total += size
            lookup = (matrix.kind == "lookup") if matrix is not None else (
                _is_lookup_table(layer, v))
            # A bias is added, not multiplied, even when 2-D (GRU with
            # reset_after, one row per RHN micro-layer).
            is_bias = v.name.startswith("bias")
            if len(v.shape) >= 2 and not lookup and not is_bias:
                layer_dense += 2 * size
                layer_sparse += 2 * active
        layers.append({"layer": layer.path, "dense_flops": layer_dense,
                       "sparse_flops": layer_sparse})
        flops += layer_sparse
        dense_flops += layer_dense
    summary = SparsitySummary(
        matrices=matrices,
        layers=layers,
        total_params=total,
        dense_params=dense_total,
        forward_flops=flops,
        dense_forward_flops=dense_flops,
        training_flops=TRAINING_FLOPS_FACTOR * flops,
        dense_training_flops=TRAINING_FLOPS_FACTOR * dense_flops,
    )
    if print_fn is not None:
        print_fn(str(summary))
    return summary
