"""Lightning's view of :class:`~ntkexp.data.arrays.ArrayData` (imported only when training: an at-initialisation
run never loads Lightning)."""

from __future__ import annotations

import lightning as L

from ntkexp.data.arrays import ArrayData, TensorBatches, augment_batch  # noqa: F401 (re-exported)


class ArrayDataModule(ArrayData, L.LightningDataModule):
    """:class:`ArrayData` with Lightning's DataModule hooks (its ``trainer`` gives the epoch's start)."""

    @classmethod
    def of(cls, data: ArrayData) -> "ArrayDataModule":
        """Lightning's view of ``data``, sharing its loaded tensors and its augmentation generator (so training draws
        the same batches as if ``data`` had been the module all along); ``data`` itself if it is one."""
        if isinstance(data, cls):
            return data
        view = getattr(data, "_lightning_view", None)
        if view is None:
            view = cls(data.cfg, seed=data.seed, device=data.device, epoch_images=data.epoch_images,
                       epoch_steps=data.epoch_steps, download=data.download)
            data._lightning_view = view  # type: ignore[attr-defined]
        data.setup()
        view._train, view._test, view._aug_generator = data._train, data._test, data._aug_generator
        return view
