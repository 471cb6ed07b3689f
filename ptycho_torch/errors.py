"""Every error ptycho_torch raises on purpose, in one tree.

`PtychoTorchError` is the base of the errors whose message is advice for the user (what was wrong, where,
what to do); the CLI maps each of them to exit code 1 with that one line, and anything else to exit 3
("a bug", with its traceback). Each subclass also derives from the builtin a caller written against older
code would catch (ValueError for bad values, KeyError for a missing NPZ key, FloatingPointError for a
diverged run), so `except ValueError` keeps working.

Modules import their error from here, so `ptycho_torch.train.TrainError` and
`ptycho_torch.errors.TrainError` are the same class.
"""
from __future__ import annotations

from pathlib import Path


class PtychoTorchError(Exception):
    """Base of the errors whose message is advice for the user; the CLI maps them to exit code 1."""


class DataContractError(PtychoTorchError, KeyError):
    """A file breaks the NPZ data contract.

    A `KeyError` subclass so that callers written against the old loader, which raised KeyError for a
    missing key, keep working. `reason` is a short machine-readable tag (e.g. "missing-key", "layout").
    """

    def __init__(self, message: str, *, path: str | Path | None = None, reason: str = "invalid",
                 section: str = "keys") -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.reason = reason
        self.section = section
        super().__init__(message)

    def __str__(self) -> str:
        # KeyError.__str__ would wrap the message in quotes.
        return self.message


class OptionsError(PtychoTorchError, ValueError):
    """An option has the wrong type or value; the message names the option and the accepted values."""


class PhysicsError(PtychoTorchError, ValueError):
    """Input to the forward model has the wrong shape, dtype or value; the message says which and why."""


class ModelConfigError(OptionsError):
    """A PtychoPINN hyper-parameter is invalid; the message names the field."""


class MetricsError(PtychoTorchError, ValueError):
    """The inputs cannot be evaluated; the message says what was wrong and what to pass instead."""


class DeviceError(PtychoTorchError, ValueError):
    """The requested device or precision is not available here; the message says what is."""


class SimulationError(PtychoTorchError, ValueError):
    """Simulation parameters that cannot produce a valid dataset."""


class TrainError(OptionsError):
    """Bad training parameters or an impossible resume; the message says what to change."""


class TrainingDivergedError(PtychoTorchError, FloatingPointError):
    """A loss became NaN or Inf; the last good checkpoint is kept.

    The one type for a divergence, from where it is found to the user: the loss check (train/progress.py)
    raises it with `what` ("loss" or "validation loss"), `value` and `step` (optimizer steps of the whole
    run); the trainer adds the epoch and the advice (in_epoch) and raises it on. The message reads
    "training stopped: the loss became nan at epoch 2, step 6; <advice>".
    """

    def __init__(self, *, what: str, value: float, step: int, epoch: int | None = None,
                 advice: str = "") -> None:
        self.what, self.value, self.step, self.epoch, self.advice = what, value, step, epoch, advice
        where = f"step {step}" if epoch is None else f"epoch {epoch}, step {step}"
        told = f"training stopped: the {what} became {value} at {where}"
        super().__init__(f"{told}; {advice}" if advice else told)

    def in_epoch(self, epoch: int, advice: str) -> TrainingDivergedError:
        """The same divergence, placed in its epoch and with the advice for the user."""
        return TrainingDivergedError(what=self.what, value=self.value, step=self.step, epoch=epoch,
                                     advice=advice)

    def __reduce__(self) -> tuple[object, ...]:  # keyword-only arguments: pickle needs the recipe
        return (_diverged, (self.what, self.value, self.step, self.epoch, self.advice))


def _diverged(what: str, value: float, step: int, epoch: int | None, advice: str) -> TrainingDivergedError:
    return TrainingDivergedError(what=what, value=value, step=step, epoch=epoch, advice=advice)


class BundleError(PtychoTorchError, ValueError):
    """A model bundle is missing, corrupt, tampered with or of an unknown format."""


class InferError(PtychoTorchError, ValueError):
    """Inference cannot run on this bundle and dataset; the message says why and what to do."""


class EvaluateError(PtychoTorchError, ValueError):
    """A reconstruction or ground-truth file cannot be scored; the message says what to pass instead."""


class BaselineError(OptionsError):
    """An iterative reconstruction cannot run as asked; the message says what to change."""


class StudyError(PtychoTorchError, ValueError):
    """A study cannot run as configured, or a stage failed; the message says what to change."""


class StudyConfigError(StudyError):
    """The study config is invalid; the message names the key path (e.g. `train.epochs`)."""
