"""The sparse Recurrent Highway Network cell (Zilly et al. 2017)."""

import keras
from keras import ops

from keras_sparse_rnn._keras.rnn import DropoutRNNCell
from keras_sparse_rnn.layers.recurrent import SparseCellMixin
from keras_sparse_rnn.validation import check_bool, check_fraction, check_int, check_number

RHN_GATES_COUPLED = ("H", "T")
RHN_GATES_UNCOUPLED = ("H", "T", "C")


@keras.saving.register_keras_serializable(package="keras_sparse_rnn")
class SparseRHNCell(SparseCellMixin, keras.layers.Layer, DropoutRNNCell):
    """Cell class for a sparse Recurrent Highway Network (Zilly et al. 2017).

    One time step runs `depth` highway micro-layers. With input `x`, previous
    output `s_0 = y_{t-1}` and micro-layers `l = 1..depth`:

    ```
    h_l = activation(W_H x [l == 1] + R_H,l s_{l-1} + b_H,l)
    t_l = sigmoid(W_T x [l == 1] + R_T,l s_{l-1} + b_T,l)
    c_l = 1 - t_l                       (coupled, the default)
    c_l = sigmoid(W_C x [l == 1] + R_C,l s_{l-1} + b_C,l)   (uncoupled)
    s_l = h_l * t_l + s_{l-1} * c_l;    output y_t = s_depth.
    ```

    The input enters only the first micro-layer. Weights are packed along the
    last axis in gate order (H, T) or (H, T, C): `kernel` of shape
    `(input_dim, G * units)`, one recurrent matrix per micro-layer,
    `recurrent_kernel_0` ... `recurrent_kernel_{depth-1}`, each of shape
    `(units, G * units)`, and a dense `bias` of shape `(depth, G * units)`.
    The kernel and recurrent kernels are sparse: each has a binary,
    non-trainable mask (`<name>_mask`) with exactly
    `round((1 - sparsity) * size)` ones, kept by the weight's constraint
    inside the compiled train step (see `SparseLSTMCell`), so the per-step
    computation uses the weights as they are. The gates H, T (and C) are the
    gate blocks that `DynamicSparsity(redistribution="gates")` and
    `distribute_sparsity(..., per_gate=True)` see.

    Dropout is variational, as in Zilly et al.: one mask per sequence for the
    input and one for the state, reused at every time step and by every
    micro-layer.

    Args:
        units: Positive integer, dimensionality of the output space.
        depth: Recurrence depth (micro-layers per time step), an int >= 1.
            Zilly et al. used 10 on Penn Treebank (830 units).
        sparsity: Fraction of zeros of each sparse matrix, in [0, 1).
            A dict gives each matrix its own: keys `"kernel"` and
            `"recurrent_kernel_<l>"`, or `"recurrent_kernel"` for every
            micro-layer without a key of its own; a value may be a list of
            one float per gate (H, T[, C]). Defaults to `0.5`.
        coupled: If True (default) the carry gate is `1 - t`; if False it has
            its own weights (gate C).
        transform_bias: Initial value of the transform-gate biases, a finite
            number; negative values start the cell close to carrying its
            state. With `coupled=False` the carry-gate biases start at
            `-transform_bias`, so the initial carry gate is the coupled one's.
            Defaults to `-2.0`.
        activation: Activation of the candidate `h`. Defaults to `"tanh"`.
        dropout: Float in [0, 1): fraction of the input units dropped
            (one mask per sequence). Defaults to `0.0`.
        recurrent_dropout: Float in [0, 1): fraction of the state units
            dropped before each micro-layer's recurrent product (one mask per
            sequence). Defaults to `0.0`.
        kernel_initializer: Initializer of `kernel`. Defaults to
            `"glorot_uniform"`.
        recurrent_initializer: Initializer of each recurrent kernel.
            Defaults to `"orthogonal"`.
        bias_initializer: Initializer of the H biases (the T and C biases
            start at `transform_bias` and `-transform_bias`). Defaults to
            `"zeros"`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: Optional
            regularizers of the kernel, of each recurrent kernel and of the
            bias.
        kernel_constraint, recurrent_constraint, bias_constraint: Optional
            constraints; on a sparse weight yours runs first, then the mask.
        seed: Random seed for dropout.
        sparse_kernel: Whether the input kernel is sparse. Defaults to `True`.
        sparse_recurrent_kernel: Whether the recurrent kernels are sparse.
            Defaults to `True`.
        mask_seed: Integer seed of the initial masks; each matrix draws from
            it and its own name. `None` draws one from NumPy's global
            generator and stores it in the config.
        block: `None`, `(1, n)`: weights on or off in blocks of n
            consecutive inputs of one output (the input dimension and `units`
            must then be multiples of n), or `(b, b)`: square blocks of
            constant fan-in, padded where b does not divide (see
            `SparseLSTMCell`).
        compute_path: `"auto"` (default), `"masked_dense"` or `"blocks"`:
            whether each micro-layer's products are computed from the active
            b x b blocks only; see `SparseLSTMCell`.

    Call arguments:
        inputs: A 2D tensor, with shape `(batch, features)`.
        states: A 2D tensor with shape `(batch, units)`, which is the state
            from the previous time step.
        training: Python boolean indicating whether the layer should behave in
            training mode or in inference mode. Only relevant when `dropout` or
            `recurrent_dropout` is used.

    Example:

    >>> inputs = np.random.random((32, 10, 8))
    >>> rnn = keras.layers.RNN(SparseRHNCell(4, depth=3, sparsity=0.75,
    ...                                      mask_seed=1))
    >>> output = rnn(inputs)
    >>> output.shape
    (32, 4)
    >>> [int(m.numpy().sum()) for _, m in rnn.cell.sparse_weights]
    [16, 8, 8, 8]
    """

    def __init__(
        self,
        units,
        depth,
        sparsity=0.5,
        coupled=True,
        transform_bias=-2.0,
        activation="tanh",
        dropout=0.0,
        recurrent_dropout=0.0,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        seed=None,
        sparse_kernel=True,
        sparse_recurrent_kernel=True,
        mask_seed=None,
        block=None,
        compute_path="auto",
        **kwargs,
    ):
        units = check_int(units, "units", minimum=1)
        depth = check_int(depth, "depth", minimum=1)
        coupled = check_bool(coupled, "coupled")
        transform_bias = check_number(transform_bias, "transform_bias")
        dropout = check_fraction(dropout, "dropout")
        recurrent_dropout = check_fraction(recurrent_dropout, "recurrent_dropout")
        super().__init__(**kwargs)
        self.units = units
        self.depth = depth
        self.coupled = coupled
        self.transform_bias = transform_bias
        self.gate_names = RHN_GATES_COUPLED if coupled else RHN_GATES_UNCOUPLED
        self.activation = keras.activations.get(activation)

        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)

        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)

        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)

        self.state_size = units
        self.output_size = units
        self._init_cell_sparsity(sparsity, sparse_kernel,
                                 sparse_recurrent_kernel, mask_seed, block,
                                 compute_path)

    @property
    def gates(self):
        """Number of gate blocks packed along the last axis (2 or 3)."""
        return len(self.gate_names)

    @property
    def recurrent_kernels(self):
        """The recurrent kernel variables, one per micro-layer."""
        return [getattr(self, f"recurrent_kernel_{l}") for l in range(self.depth)]

    def _bias_values(self, shape, dtype=None):
        units = self.units
        values = self.bias_initializer((shape[0], units), dtype=dtype)
        parts = [values, ops.full((shape[0], units), self.transform_bias, dtype)]
        if not self.coupled:
            parts.append(ops.full((shape[0], units), -self.transform_bias, dtype))
        return ops.concatenate(parts, axis=-1)

    def build(self, input_shape):
        super().build(input_shape)
        input_dim = input_shape[-1]
        width = self.gates * self.units
        self.kernel = self.add_weight(
            shape=(input_dim, width),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        for l in range(self.depth):
            setattr(self, f"recurrent_kernel_{l}", self.add_weight(
                shape=(self.units, width),
                name=f"recurrent_kernel_{l}",
                initializer=self.recurrent_initializer,
                regularizer=self.recurrent_regularizer,
                constraint=self.recurrent_constraint,
            ))
        self.bias = self.add_weight(
            shape=(self.depth, width),
            name="bias",
            initializer=self._bias_values,
            regularizer=self.bias_regularizer,
            constraint=self.bias_constraint,
        )
        self._mask_planned_weights(self.gates, self.gate_names)

    def matrix_sparsity(self, name):
        # "recurrent_kernel" in a dict is the default of every micro-layer.
        if (isinstance(self.sparsity, dict) and name not in self.sparsity
                and name.startswith("recurrent_kernel_")
                and "recurrent_kernel" in self.sparsity):
            return self.sparsity["recurrent_kernel"]
        return super().matrix_sparsity(name)

    def _planned_sparse_weights(self):
        return ((["kernel"] if self.sparse_kernel else [])
                + ([f"recurrent_kernel_{l}" for l in range(self.depth)]
                   if self.sparse_recurrent_kernel else []))

    def _sparsity_keys(self):
        keys = self._planned_sparse_weights()
        return keys + (["recurrent_kernel"] if self.sparse_recurrent_kernel else [])

    def call(self, inputs, states, training=False):
        return self._call_with_products(self._step, inputs, states, training)

    def _step(self, inputs, states, training):
        s = states[0] if keras.tree.is_nested(states) else states
        if training and 0.0 < self.dropout < 1.0:
            inputs = inputs * self.get_dropout_mask(inputs)
        rec_mask = None
        if training and 0.0 < self.recurrent_dropout < 1.0:
            rec_mask = self.get_recurrent_dropout_mask(s)
        # The input enters the first micro-layer only.
        x_proj = self._product(inputs, "kernel")
        for l in range(self.depth):
            s_in = s * rec_mask if rec_mask is not None else s
            z = self._product(s_in, f"recurrent_kernel_{l}") + self.bias[l]
            if l == 0:
                z = z + x_proj
            if self.coupled:
                z_h, z_t = ops.split(z, 2, axis=-1)
                t = ops.sigmoid(z_t)
                s = s + t * (self.activation(z_h) - s)
            else:
                z_h, z_t, z_c = ops.split(z, 3, axis=-1)
                s = self.activation(z_h) * ops.sigmoid(z_t) + s * ops.sigmoid(z_c)
        new_state = [s] if keras.tree.is_nested(states) else s
        return s, new_state

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.state_size), dtype=self.compute_dtype)]

    def get_config(self):
        config = {
            "units": self.units,
            "depth": self.depth,
            "coupled": self.coupled,
            "transform_bias": self.transform_bias,
            "activation": keras.activations.serialize(self.activation),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "kernel_initializer": keras.initializers.serialize(
                self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(
                self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(
                self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(
                self.kernel_regularizer),
            "recurrent_regularizer": keras.regularizers.serialize(
                self.recurrent_regularizer),
            "bias_regularizer": keras.regularizers.serialize(
                self.bias_regularizer),
            "kernel_constraint": keras.constraints.serialize(
                self.kernel_constraint),
            "recurrent_constraint": keras.constraints.serialize(
                self.recurrent_constraint),
            "bias_constraint": keras.constraints.serialize(self.bias_constraint),
            "seed": self.seed,
        }
        base_config = super().get_config()
        return {**base_config, **config}
