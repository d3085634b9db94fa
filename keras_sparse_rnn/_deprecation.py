"""Renamed public names: the old name still works for one release, and warns."""

import warnings


def renamed(module_name, renames, namespace):
    """A module-level `__getattr__` for `module_name` that serves each old
    name of `renames` (`{old: new}`) as `namespace[new]` (the module's
    `globals()`), with a DeprecationWarning that names the new one."""

    def __getattr__(name):
        if name in renames:
            new = renames[name]
            kind = "class" if new[0].isupper() else "function"
            warnings.warn(
                f"{module_name}.{name} is deprecated and will be removed in the "
                f"next release: use keras_sparse_rnn.{new} (the same {kind})",
                DeprecationWarning, stacklevel=2)
            return namespace[new]
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    return __getattr__
