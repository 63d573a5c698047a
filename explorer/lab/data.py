"""The Lab's data: scikit-learn's digits (the embedded default), or CIFAR-10 / CIFAR-100.

The digits: 1,797 8x8 grey images of 10 classes, bundled with scikit-learn (no download), split
once into train and validation sets. scikit-learn is imported on the first `load_digits()` call,
never at import: the configs of the ready experiments are sized from the data's shape constants
below, which `load_digits` checks. CIFAR (the papers' data) is read from a data directory by
`explorer.lab.cifar`; its test split validates.

Every data set offers the same few methods to training: `train_batch(idx, gen)` (a training
batch, augmented where the set is), `val_batches(n)` and `probe_batch(n)`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator, Literal, NamedTuple, get_args

import torch

from explorer.arch.config import ArchConfig
from explorer.errors import ConfigError

DATASET = "scikit-learn digits (1,797 8x8 grey images, 10 classes)"
IN_CHANNELS = 1         # grey
INPUT_SIZE = 8          # 8x8 pixels
NUM_CLASSES = 10        # the digits 0-9
VAL_FRACTION = 0.2      # share of each class held out for validation
SPLIT_SEED = 0          # the split never changes with the training seed: runs stay comparable

# Where CIFAR is looked for (and fetched to) when no directory is given: this variable, else
# $XDG_DATA_HOME/resnet-explorer/data (~/.local/share/...). The app reads it from there only.
DATA_DIR_VAR = "RESNET_EXPLORER_DATA_DIR"

Dataset = Literal["digits", "cifar10", "cifar100"]
DATASETS: tuple[str, ...] = get_args(Dataset)


class DataShape(NamedTuple):
    """What a network must take and give for a data set, and how many images it has."""

    in_channels: int
    input_size: int
    num_classes: int
    title: str


SHAPES: dict[str, DataShape] = {
    "digits": DataShape(IN_CHANNELS, INPUT_SIZE, NUM_CLASSES, DATASET),
    "cifar10": DataShape(3, 32, 10, "CIFAR-10 (60,000 32x32 colour images, 10 classes; test split validates)"),
    "cifar100": DataShape(3, 32, 100, "CIFAR-100 (60,000 32x32 colour images, 100 classes; test split validates)"),
}


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

    name = "digits"
    augmented = False   # the digits train as they are

    def train_batch(self, idx: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The images at `idx` (`gen` unused: no augmentation)."""
        return self.x_train[idx], self.y_train[idx]

    def val_batches(self, batch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for begin in range(0, len(self.x_val), batch):
            yield self.x_val[begin: begin + batch], self.y_val[begin: begin + batch]

    def probe_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first `n` training images."""
        return self.x_train[:n], self.y_train[:n]


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


def default_data_dir() -> str:
    """DATA_DIR_VAR, else the data directory under $XDG_DATA_HOME (~/.local/share)."""
    if os.environ.get(DATA_DIR_VAR):
        return os.environ[DATA_DIR_VAR]
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "resnet-explorer", "data")


def load_data(dataset: str = "digits", data_dir: str | None = None, download: bool = False):
    """The data set a run trains on: the digits, or CIFAR from `data_dir` (None: the default
    directory; see `explorer.lab.cifar.load_cifar`, which raises ConfigError where the data is
    missing)."""
    check_dataset(dataset)
    if dataset == "digits":
        return load_digits()
    from explorer.lab.cifar import load_cifar

    return load_cifar(dataset, data_dir or default_data_dir(), download)


def check_dataset(dataset: str) -> DataShape:
    if dataset not in SHAPES:
        raise ConfigError("dataset", dataset, "one of " + ", ".join(DATASETS))
    return SHAPES[dataset]


def lab_config(cfg: ArchConfig, dataset: str = "digits") -> ArchConfig:
    """`cfg` adapted to the data: CIFAR-style stem (3x3, stride 1: He et al. 2015, Sec. 4.2), and
    the channels, size and classes of `dataset` (the digits: 1x8x8, 10; CIFAR: 3x32x32, 10 or 100)."""
    if not isinstance(cfg, ArchConfig):
        raise ConfigError("config", cfg, "an ArchConfig (e.g. explorer.preset('resnet20'))")
    shape = check_dataset(dataset)
    return cfg.replace(stem="cifar", in_channels=shape.in_channels, input_size=shape.input_size,
                       num_classes=shape.num_classes)
