"""The model's compiled loss, as its `train_step` computes it."""


def compiled_loss(model, x, y, y_pred, sample_weight):
    """`model.compute_loss` in inference mode, whether or not an override
    of it takes the `training` argument (Keras 3.3 added it)."""
    return model._compute_loss(x=x, y=y, y_pred=y_pred,
                               sample_weight=sample_weight, training=False)
