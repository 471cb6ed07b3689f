"""One error tree: every error ptycho_torch raises on purpose is a PtychoTorchError (CLI exit 1)."""
from __future__ import annotations

import inspect

from ptycho_torch import errors


def test_every_error_class_derives_from_the_one_base() -> None:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, Exception)]
    assert len(classes) >= 15
    for cls in classes:
        assert issubclass(cls, errors.PtychoTorchError), cls


def test_modules_raise_the_classes_of_the_tree() -> None:
    from ptycho_torch import metrics, model, physics, train

    assert physics.PhysicsError is errors.PhysicsError
    assert model.ModelConfigError is errors.ModelConfigError
    assert metrics.MetricsError is errors.MetricsError
    assert train.TrainError is errors.TrainError
    assert issubclass(errors.DataContractError, KeyError)
    assert issubclass(errors.TrainError, ValueError)
