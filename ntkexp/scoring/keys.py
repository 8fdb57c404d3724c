"""Conventions and cache keys: what a score depends on, recorded with it, and the one function that turns that into a
key of the durable score cache.

A score depends on the network (the space's settings and the arch), the NTK conventions (including the probe batch
size), the initialisation, the seed, the probe data *by content* (a hash of the images and labels actually used, so
another data file never returns old scores), the metric selection's settings, and, after training, the training
protocol and the training data by content. :data:`SCORE_SCHEMA` is bumped whenever the scoring code changes a score.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any, Mapping

import torch

SCORE_SCHEMA = 3


def fingerprint(*tensors: torch.Tensor | None) -> str:
    """A short SHA-256 of the tensors' values, shapes and dtypes (``None`` counts as absent)."""
    digest = hashlib.sha256()
    for t in tensors:
        if t is None:
            digest.update(b"none")
            continue
        t = t.detach().cpu().contiguous()
        digest.update(f"{tuple(t.shape)}:{t.dtype}".encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()[:16]


#: settings recorded with a score that do not change it (memory and speed): the key holds their default, so
#: changing them reads the scores already cached (and keys written before they were left out stay valid)
NOT_IN_KEY = {"ntk": {"chunk_size": None}}
#: the same for settings added after keys were written: left out of the key altogether
LEFT_OUT = {"ntk": ("implementation",)}


def key_conventions(conventions: Mapping[str, Any]) -> dict[str, Any]:
    """``conventions`` as a key holds them: :data:`NOT_IN_KEY` at their defaults, :data:`LEFT_OUT` removed."""
    conventions = dict(conventions)
    for part, neutral in NOT_IN_KEY.items():
        if isinstance(conventions.get(part), Mapping):
            conventions[part] = {**conventions[part], **neutral}
    for part, names in LEFT_OUT.items():
        if isinstance(conventions.get(part), Mapping):
            conventions[part] = {k: v for k, v in conventions[part].items() if k not in names}
    return conventions


def cache_key(purpose: str, arch: str, conventions: Mapping[str, Any], **detail: Any) -> str:
    """The cache key of ``purpose`` ('score', 'track' or 'training') for ``arch`` under ``conventions`` (less
    :data:`NOT_IN_KEY` and :data:`LEFT_OUT`)."""
    conventions = key_conventions(conventions)
    payload = {"schema": SCORE_SCHEMA, "purpose": purpose, "arch": arch, **conventions, **detail}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def dataset_conventions(cfg: Any) -> dict[str, Any]:
    """The data set settings that change a probe batch (the content hash is added by the scorer)."""
    return {"name": cfg.name, "kind": cfg.kind, "resolution": cfg.resolution, "mean": list(cfg.mean),
            "std": list(cfg.std)}


def training_conventions(train_cfg: Any, data_cfg: Any, train_fingerprint: str, device_type: str = "cpu",
                         steps_per_epoch: int | None = None) -> dict[str, Any]:
    """What a short training depends on: the protocol as resolved on ``device_type`` (the precision and memory
    format actually used, not ``auto``), the optimiser steps of one epoch, the data pipeline and the training images
    by content."""
    trainer = asdict(train_cfg)
    trainer["precision"] = train_cfg.resolved_precision(device_type)
    trainer["channels_last"] = train_cfg.use_channels_last(device_type)
    trainer["accelerator"] = device_type  # what ran it ('auto' and 'cpu' on a CPU train alike)
    if steps_per_epoch is not None:
        trainer["steps_per_epoch"] = int(steps_per_epoch)
    data = {k: v for k, v in asdict(data_cfg).items() if k not in ("label", "root", "path")}
    return {"trainer": trainer, "data": data, "train_data": train_fingerprint}
