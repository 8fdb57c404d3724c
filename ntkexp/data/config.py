"""Config group ``dataset`` (no Lightning here: the schema loads without it)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DataConfig:
    """Config group ``dataset``. ``benchmark_key`` names this data set's column in a ground-truth table;
    ``probe_only`` marks a set of probe images too small to train on (training refuses it)."""

    name: str = "cifar10_probe"
    label: str = ""  # the data set in words (outputs fall back to the name)
    kind: str = "npz"
    root: str = "."
    path: str | None = "pkg://cifar10_probe.npz"
    keys: dict[str, str] = field(default_factory=dict)
    num_classes: int = 10
    in_channels: int = 3
    resolution: int = 32
    mean: list[float] = field(default_factory=lambda: [0.4914, 0.4822, 0.4465])
    std: list[float] = field(default_factory=lambda: [0.2470, 0.2435, 0.2616])
    benchmark_key: str = "cifar10"
    probe_only: bool = False
    augment: bool = True
    crop_padding: int = 4
    flip: bool = True
    batch_size: int = 256
    loader: str = "tensor"  # tensor | dataloader
    train_subset: int | None = None  # keep only the first n training images (tests, quick runs)
    verify: bool = True  # check CIFAR files against their published MD5s when first read (false: a deliberate subset)


class ProbeOnlyDataError(ValueError):
    """Training was asked for on a data set that holds probe images only."""


def require_training_set(cfg: DataConfig, what: str = "training") -> None:
    """Refuse ``what`` on a probe-only data set, in one line that says how to get a training set."""
    if cfg.probe_only:
        raise ProbeOnlyDataError(
            f"{what} needs a training set, but dataset={cfg.name} holds only the probe images that ship with ntkexp. "
            "Get the python CIFAR-10 release (cifar-10-batches-py from https://www.cs.toronto.edu/~kriz/) into "
            "paths.data_root and add dataset=cifar10, or train on a partial set explicitly with dataset=cifar10_npz "
            "dataset.path=<images.npz> (e.g. ../shared/data/cifar10_partial/cifar10_partial.npz; say so when quoting)")


@dataclass(frozen=True)
class EpochPlan:
    """How a run counts training, built once from the data and the trainer (:meth:`ArrayData.plan`): images per
    optimiser step, steps per epoch (``trainer.epoch_steps``, else ``trainer.epoch_images`` in full batches, rounded
    up, else one pass) and steps per pass through the training set. The one place epochs become steps and images."""

    batch_size: int
    steps_per_epoch: int
    steps_per_pass: int

    @classmethod
    def of(cls, n_train: int, batch_size: int, epoch_steps: int | None = None,
           epoch_images: int | None = None) -> "EpochPlan":
        if batch_size < 1 or n_train < 1:
            raise ValueError(f"an epoch needs a batch size and training images, got {batch_size} and {n_train}")
        per_pass = -(-n_train // batch_size)
        if epoch_steps is not None:
            per_epoch = int(epoch_steps)
        elif epoch_images is not None:
            per_epoch = -(-int(epoch_images) // batch_size)
        else:
            per_epoch = per_pass
        return cls(batch_size=batch_size, steps_per_epoch=per_epoch, steps_per_pass=per_pass)

    def steps(self, epochs: int) -> int:
        """Optimiser steps in ``epochs`` epochs."""
        return int(epochs) * self.steps_per_epoch

    def images(self, epochs: int) -> int:
        """Training images seen (with repeats) in ``epochs`` epochs."""
        return self.steps(epochs) * self.batch_size
