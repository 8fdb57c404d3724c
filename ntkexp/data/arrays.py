"""In-memory image arrays (no Lightning: an at-initialisation run loads these alone), with batch-level augmentation
in torch ops; ``ntkexp.data.datamodule`` gives Lightning's view of them for training.

The whole split is held as one normalised float tensor. Training batches are cut from it by a seeded permutation and
augmented on the batch (random crop after zero padding, horizontal flip), so when the tensor lives on the GPU there is
no per-step host-to-device copy (``loader=tensor``); ``loader=dataloader`` gives the plain ``torch.utils.data``
path instead.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

from ntkexp.data.config import DataConfig, EpochPlan, ProbeOnlyDataError, require_training_set  # noqa: F401 (re-exported)
from ntkexp.data.sources import DataSplit, load_arrays
from ntkexp.downloads import DownloadSettings


def _to_float(split: DataSplit, mean: list[float], std: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(split.x)
    x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return ((x - m) / s).contiguous(), torch.from_numpy(split.y).long()


def augment_batch(x: torch.Tensor, padding: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random crop (zero padding ``padding``) and horizontal flip, per sample, on the batch's own device."""
    b, c, h, w = x.shape
    if padding > 0:
        xp = F.pad(x, (padding, padding, padding, padding))
        oy = torch.randint(0, 2 * padding + 1, (b,), generator=generator).to(x.device)
        ox = torch.randint(0, 2 * padding + 1, (b,), generator=generator).to(x.device)
        rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        bi = torch.arange(b, device=x.device)[:, None, None, None]
        ci = torch.arange(c, device=x.device)[None, :, None, None]
        x = xp[bi, ci, rows, cols]
    if flip:
        mask = (torch.rand(b, generator=generator) < 0.5).to(x.device)[:, None, None, None]
        x = torch.where(mask, x.flip(3), x)
    return x


class TensorBatches:
    """An epoch of shuffled, augmented batches sliced from tensors (on any device).

    Training batches are cut from one endless stream: the concatenation of reshuffled passes over the data, pass
    ``p`` shuffled by (seed, p). Batch ``k`` of the stream is images ``k*B .. (k+1)*B - 1`` of it (always a full
    batch), augmented by (seed, k). An epoch is the next ``steps`` batches, starting at the stream position that
    ``start_fn`` gives (the trainer's global step when the epoch starts), so what the network sees after ``s`` steps
    depends on the seed and ``s`` alone: not on how the steps are grouped into epochs, nor on a resume from a
    checkpoint. Without ``start_fn`` the epochs follow each other from batch 0. With ``shuffle=False`` (evaluation)
    it is one ordered pass over the data, with a partial last batch.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, cfg: DataConfig | None, seed: int,
                 shuffle: bool = True, start_fn: Callable[[], int] | None = None, steps: int | None = None) -> None:
        self.x, self.y, self.batch_size, self.cfg, self.shuffle = x, y, batch_size, cfg, shuffle
        self.seed, self.start_fn, self._next = seed, start_fn, 0
        self.steps = steps if steps is not None else -(-len(y) // batch_size)
        self._passes: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return self.steps

    def _pass(self, p: int) -> torch.Tensor:
        if p not in self._passes:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + p)
            self._passes = {q: v for q, v in self._passes.items() if q >= p - 1}
            self._passes[p] = torch.randperm(len(self.y), generator=gen).to(self.x.device)
        return self._passes[p]

    def batch_indices(self, k: int) -> torch.Tensor:
        """The indices of the images of stream batch ``k``."""
        n, b = len(self.y), self.batch_size
        start, stop = k * b, (k + 1) * b
        parts = [self._pass(p)[max(start - p * n, 0) : min(stop - p * n, n)] for p in range(start // n, -(-stop // n))]
        return torch.cat(parts)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if not self.shuffle:
            for start in range(0, len(self.y), self.batch_size):
                yield self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]
            return
        first = self.start_fn() if self.start_fn is not None else self._next
        self._next = first + self.steps
        generator = torch.Generator()
        for k in range(first, first + self.steps):
            idx = self.batch_indices(k)
            xb = self.x[idx]
            if self.cfg is not None and self.cfg.augment:
                generator.manual_seed(self.seed * 1_000_003 + 7_919 * k + 1)
                xb = augment_batch(xb, self.cfg.crop_padding, self.cfg.flip, generator)
            yield xb, self.y[idx]


class ArrayData:
    """Train/test splits of one data set, normalised with the benchmark's mean and std: probe batches, training
    batches and the epoch's size. Lightning's view for training: ``ArrayDataModule.of(data)``."""

    def __init__(self, cfg: DataConfig, seed: int = 0, device: str | torch.device = "cpu",
                 epoch_images: int | None = None, epoch_steps: int | None = None,
                 download: DownloadSettings | None = None) -> None:
        super().__init__()
        self.download = download  # how a missing data set is fetched (None: never)
        if cfg.loader not in ("tensor", "dataloader"):
            raise ValueError(f"dataset.loader must be 'tensor' or 'dataloader', got {cfg.loader!r}")
        self.cfg, self.seed, self.device = cfg, seed, torch.device(device)
        self.epoch_images, self.epoch_steps = epoch_images, epoch_steps
        self._train: tuple[torch.Tensor, torch.Tensor] | None = None
        self._test: tuple[torch.Tensor, torch.Tensor] | None = None
        self._aug_generator = torch.Generator().manual_seed(seed)
        self._plan: EpochPlan | None = None

    def setup(self, stage: str | None = None) -> None:
        if self._train is not None:
            return
        cfg = self.cfg
        train, test = load_arrays(cfg.kind, root=cfg.root, path=cfg.path, num_classes=cfg.num_classes, keys=cfg.keys,
                                  download=self.download, verify=cfg.verify)
        if cfg.train_subset is not None:
            train = DataSplit(train.x[: cfg.train_subset], train.y[: cfg.train_subset])
        for split_name, split in (("train", train), ("test", test)):
            if split.x.ndim != 4 or split.x.shape[1] != cfg.in_channels:
                raise ValueError(f"dataset {cfg.name!r}: {split_name} images have shape {split.x.shape[1:]}, "
                                 f"expected {cfg.in_channels} channels (NCHW)")
            if len(split.x) and tuple(split.x.shape[2:]) != (cfg.resolution, cfg.resolution):
                raise ValueError(f"dataset {cfg.name!r}: {split_name} images are {split.x.shape[2]}x{split.x.shape[3]}, "
                                 f"but dataset.resolution={cfg.resolution} ({cfg.path or cfg.root}); the benchmark's "
                                 "accuracies are for images of that size (set dataset.resolution if the images are "
                                 "meant)")
            if len(split.y) and (split.y.min() < 0 or split.y.max() >= cfg.num_classes):
                raise ValueError(f"dataset {cfg.name!r}: {split_name} labels span {split.y.min()}..{split.y.max()}, "
                                 f"outside 0..{cfg.num_classes - 1}")
        if len(train.y) == 0:
            raise ValueError(f"dataset {cfg.name!r} has no training images")
        for split_name, split in (("train", train), ("test", test)):
            if np.issubdtype(split.x.dtype, np.floating) and not np.isfinite(split.x).all():
                bad = int((~np.isfinite(split.x)).reshape(len(split.x), -1).any(1).sum())
                raise ValueError(f"dataset {cfg.name!r}: {bad} {split_name} images hold NaN or infinite pixels "
                                 f"({cfg.path or cfg.root}); every score of them would be undefined")
        self._train = tuple(t.to(self.device) for t in _to_float(train, cfg.mean, cfg.std))  # type: ignore[assignment]
        self._test = tuple(t.to(self.device) for t in _to_float(test, cfg.mean, cfg.std))  # type: ignore[assignment]

    @property
    def train_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        self.setup()
        assert self._train is not None
        return self._train

    @property
    def test_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        self.setup()
        assert self._test is not None
        return self._test

    def probe_batch(self, size: int, seed: int, split: str = "train",
                    augment: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch of ``size`` images of ``split``, drawn without replacement by ``seed``; un-augmented, or with
        ``augment`` (training images only) cropped and flipped as a training batch is, also by ``seed``."""
        x, y = self.train_tensors if split == "train" else self.test_tensors
        if not 2 <= size <= len(y):
            raise ValueError(f"batch size {size} must be between 2 and the {len(y)} {split} images of {self.cfg.name}")
        idx = torch.from_numpy(np.random.default_rng(seed).choice(len(y), size=size, replace=False)).to(x.device)
        xb = x[idx]
        if augment:
            if split != "train":
                raise ValueError("only training images are augmented")
            generator = torch.Generator().manual_seed(int(seed) % 2**63)
            xb = augment_batch(xb, self.cfg.crop_padding, self.cfg.flip, generator)
        return xb.contiguous(), y[idx]

    @property
    def plan(self) -> EpochPlan:
        """How training on these images is counted (steps per epoch and per pass, batch), built once."""
        if self._plan is None:
            self._plan = EpochPlan.of(len(self.train_tensors[1]), self.cfg.batch_size, self.epoch_steps,
                                      self.epoch_images)
        return self._plan

    @property
    def steps_per_pass(self) -> int:
        """Optimiser steps of one pass through the training set (full batches, rounded up)."""
        return self.plan.steps_per_pass

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps in one training epoch (see :class:`EpochPlan`)."""
        return self.plan.steps_per_epoch

    def train_dataloader(self, start_fn: Callable[[], int] | None = None) -> Any:
        """One epoch of training batches; ``start_fn`` gives the stream position the epoch starts at (the trainer's
        global step; default: this module's trainer if it has one, else 0)."""
        x, y = self.train_tensors
        if self.cfg.loader == "dataloader":
            gen = torch.Generator().manual_seed(self.seed)
            sampler = RandomSampler(range(len(y)), num_samples=self.steps_per_epoch * self.cfg.batch_size,
                                    generator=gen)
            return DataLoader(TensorDataset(x.cpu(), y.cpu()), batch_size=self.cfg.batch_size, sampler=sampler,
                              collate_fn=self._collate_augment)
        return TensorBatches(x, y, self.cfg.batch_size, self.cfg, self.seed, start_fn=start_fn or self._global_step,
                             steps=self.steps_per_epoch)

    def _global_step(self) -> int:
        trainer = getattr(self, "trainer", None)
        return int(trainer.global_step) if trainer is not None else 0

    def _collate_augment(self, items: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        xb = torch.stack([i[0] for i in items])
        yb = torch.stack([i[1] for i in items])
        if self.cfg.augment:
            xb = augment_batch(xb, self.cfg.crop_padding, self.cfg.flip, self._aug_generator)
        return xb, yb
