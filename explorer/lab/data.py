"""The Lab's data: scikit-learn's digits, split once into train and validation sets.

1,797 8x8 grey images of 10 classes, bundled with scikit-learn (no download). scikit-learn is
imported on the first `load_digits()` call, never at import: the configs of the ready
experiments are sized from the data's shape constants below, which `load_digits` checks.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from explorer.arch.config import ArchConfig
from explorer.errors import ConfigError

DATASET = "scikit-learn digits (1,797 8x8 grey images, 10 classes)"
IN_CHANNELS = 1         # grey
INPUT_SIZE = 8          # 8x8 pixels
NUM_CLASSES = 10        # the digits 0-9
VAL_FRACTION = 0.2      # share of each class held out for validation
SPLIT_SEED = 0          # the split never changes with the training seed: runs stay comparable


@dataclass(frozen=True)
class Digits:
    """The fixed split, normalised with the training set's mean and std. Never mutate."""

    x_train: torch.Tensor   # (N_train, 1, 8, 8) float32
    y_train: torch.Tensor   # (N_train,) int64
    x_val: torch.Tensor     # (N_val, 1, 8, 8)
    y_val: torch.Tensor     # (N_val,)
    mean: float
    std: float

    @property
    def in_channels(self) -> int:
        return self.x_train.shape[1]

    @property
    def input_size(self) -> int:
        return self.x_train.shape[-1]

    @property
    def num_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_val]).max()) + 1


@lru_cache(maxsize=1)
def load_digits() -> Digits:
    """scikit-learn's digits, stratified into train / validation with SPLIT_SEED."""
    from sklearn.datasets import load_digits as sk_digits

    raw = sk_digits()
    x = torch.tensor(raw.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (N, 1, 8, 8) in [0, 1]
    y = torch.tensor(raw.target, dtype=torch.int64)
    gen = torch.Generator().manual_seed(SPLIT_SEED)
    train_idx, val_idx = [], []
    for label in range(int(y.max()) + 1):
        idx = torch.nonzero(y == label).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_val = round(len(idx) * VAL_FRACTION)
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    train = torch.cat(train_idx)
    train = train[torch.randperm(len(train), generator=gen)]  # so any prefix is a random subset
    val = torch.sort(torch.cat(val_idx)).values
    mean, std = x[train].mean().item(), x[train].std().item()
    x = (x - mean) / std
    data = Digits(x[train], y[train], x[val], y[val], mean, std)
    shape = (data.in_channels, data.input_size, data.num_classes)
    if shape != (IN_CHANNELS, INPUT_SIZE, NUM_CLASSES):  # a changed data set: fix the constants
        raise RuntimeError(f"the digits have (channels, size, classes) {shape}, not "
                           f"{(IN_CHANNELS, INPUT_SIZE, NUM_CLASSES)}")
    return data


def lab_config(cfg: ArchConfig) -> ArchConfig:
    """`cfg` adapted to the data: CIFAR-style stem, and channels, size and classes of the digits."""
    if not isinstance(cfg, ArchConfig):
        raise ConfigError("config", cfg, "an ArchConfig (e.g. explorer.preset('resnet20'))")
    return cfg.replace(stem="cifar", in_channels=IN_CHANNELS, input_size=INPUT_SIZE,
                       num_classes=NUM_CLASSES)
