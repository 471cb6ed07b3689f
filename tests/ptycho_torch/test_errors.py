"""One error tree: every error ptycho_torch raises on purpose is a PtychoTorchError (CLI exit 1)."""
from __future__ import annotations

import inspect
import pickle

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


def test_a_divergence_is_one_type_from_the_loss_check_to_the_user() -> None:
    found = errors.TrainingDivergedError(what="loss", value=float("nan"), step=6)
    assert str(found) == "training stopped: the loss became nan at step 6"
    told = found.in_epoch(2, "no checkpoint was written yet")
    assert str(told) == ("training stopped: the loss became nan at epoch 2, step 6; "
                         "no checkpoint was written yet")
    assert (told.what, told.step, told.epoch) == ("loss", 6, 2) and isinstance(told, FloatingPointError)
    copy = pickle.loads(pickle.dumps(told))
    assert type(copy) is errors.TrainingDivergedError and str(copy) == str(told)
