"""CIFAR-10 and CIFAR-100 from the official "python version" archives, read by a small loader.

The archives (Krizhevsky 2009) hold pickled dicts: CIFAR-10's data_batch_1..5 and test_batch,
CIFAR-100's train and test, each with b"data", uint8 rows of 3,072 values (1,024 red, then
green, then blue, each 32x32 row-major), and b"labels" (CIFAR-10) or b"fine_labels" (CIFAR-100).
They are read from the extracted folder or straight from the .tar.gz in a data directory, and
downloaded there only when asked (checksum verified). Only the pickle classes a numpy array
needs may load: a pickle is code, and a data directory is not trusted.

The papers' training (He et al. 2015, Sec. 4.2): per-channel normalisation with the training
set's mean and std; 4 pixels of zero padding each side, a random 32x32 crop and a random
horizontal flip, drawn per image from a seeded generator, batch by batch with torch ops.
"""
from __future__ import annotations

import hashlib
import importlib
import io
import pickle
import tarfile
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from explorer.errors import ConfigError

PAD = 4            # pixels of zero padding each side before the random crop
SIZE = 32          # CIFAR images are 32x32
CHANNELS = 3       # red, green, blue
DOWNLOAD_TIMEOUT_S = 60.0
CHUNK = 1 << 20    # bytes read at a time while downloading and hashing


@dataclass(frozen=True)
class CifarSource:
    """Where one CIFAR set lives and how its archive is laid out."""

    folder: str                       # the archive's top folder, also its extracted name
    archive: str
    url: str
    md5: str
    train: tuple[str, ...]            # batch files of the training set
    test: tuple[str, ...]
    label_key: bytes
    classes: int
    train_size: int                   # images in the official sets
    test_size: int


SOURCES = {
    "cifar10": CifarSource("cifar-10-batches-py", "cifar-10-python.tar.gz",
                           "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                           "c58f30108f718f92721af3b95e74349a",
                           tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), b"labels", 10,
                           50_000, 10_000),
    "cifar100": CifarSource("cifar-100-python", "cifar-100-python.tar.gz",
                            "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                            "eb9058c3a382ffc7106e4002c42a8d85", ("train",), ("test",), b"fine_labels", 100,
                            50_000, 10_000),
}


@dataclass(frozen=True)
class Cifar:
    """A CIFAR set as stored (uint8), normalised batch by batch. Never mutate."""

    name: str
    x_train: torch.Tensor     # (N_train, 3, 32, 32) uint8
    y_train: torch.Tensor     # (N_train,) int64
    x_val: torch.Tensor       # (N_val, 3, 32, 32) uint8: the test split validates
    y_val: torch.Tensor
    mean: tuple[float, ...]   # per channel, of the training set scaled to [0, 1]
    std: tuple[float, ...]
    num_classes: int

    in_channels = CHANNELS
    input_size = SIZE
    augmented = True

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, 32, 32) -> float32, per-channel zero mean and unit std."""
        mean = torch.tensor(self.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.std).view(1, -1, 1, 1)
        return (x.float() / 255.0 - mean) / std

    def train_batch(self, idx: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The images at `idx`, normalised and augmented with `gen`'s random numbers."""
        return augment(self.normalise(self.x_train[idx]), gen), self.y_train[idx]

    def val_batches(self, batch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for begin in range(0, len(self.x_val), batch):
            yield self.normalise(self.x_val[begin: begin + batch]), self.y_val[begin: begin + batch]

    def probe_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first `n` training images, normalised, not augmented."""
        return self.normalise(self.x_train[:n]), self.y_train[:n]


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Zero-pad PAD pixels, crop a random 32x32 window and flip half the images, per image.
    Padding after normalisation pads with the mean colour, as fb.resnet.torch does."""
    b, c, h, w = x.shape  # (B, C, H, W)
    padded = torch.nn.functional.pad(x, (PAD, PAD, PAD, PAD))  # (B, C, H + 2 PAD, W + 2 PAD)
    dy = torch.randint(0, 2 * PAD + 1, (b,), generator=gen)
    dx = torch.randint(0, 2 * PAD + 1, (b,), generator=gen)
    flip = torch.rand(b, generator=gen) < 0.5
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]  # (B, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]  # (B, 1, 1, W)
    cols = torch.where(flip[:, None, None, None], cols.flip(-1), cols)
    images = torch.arange(b)[:, None, None, None]
    channels = torch.arange(c)[None, :, None, None]
    return padded[images, channels, rows, cols]  # (B, C, H, W)


def load_cifar(name: str, data_dir: str | Path | None, download: bool = False) -> Cifar:
    """CIFAR-10 or CIFAR-100 from `data_dir` (the extracted folder or the .tar.gz), fetched
    there first when `download` and neither is present. Cached per set and directory.

    Raises:
        ConfigError: an unknown set, no data directory, no data there (and no download asked
            for), a failed download or checksum, or files that are not the CIFAR layout.
    """
    source = _source(name)
    if data_dir is None or str(data_dir) == "":
        raise ConfigError("data_dir", data_dir, f"a directory holding {source.folder}/ or {source.archive} "
                          "(--data-dir DIR; add --download to fetch it there)")
    root = Path(data_dir).expanduser().resolve()
    if download and locate(name, root) is None:
        fetch(name, root)
    return _load(name, str(root))


def locate(name: str, root: Path) -> Path | None:
    """The extracted folder or the archive of `name` in `root`, or None."""
    source = _source(name)
    for path in (root / source.folder, root / source.archive):
        if path.exists():
            return path
    return None


def fetch(name: str, root: Path) -> Path:
    """Download the official archive into `root`, verifying its MD5; ConfigError on failure."""
    source = _source(name)
    target = root / source.archive
    partial = target.with_name(target.name + ".part")
    try:
        root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.md5()
        with urllib.request.urlopen(source.url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(partial, "wb") as out:
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except OSError as exc:  # offline, refused, a full disk: one line, no traceback
        partial.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc.strerror or exc
        raise ConfigError("download", source.url, f"a reachable URL (the download failed: {reason})",
                          f"Put {source.archive} into {root} by hand") from None
    if digest.hexdigest() != source.md5:
        partial.unlink(missing_ok=True)
        raise ConfigError("download", source.url, f"an archive with MD5 {source.md5} (got {digest.hexdigest()})")
    partial.replace(target)
    return target


@lru_cache(maxsize=2)
def _load(name: str, root: str) -> Cifar:
    source = _source(name)
    path = locate(name, Path(root))
    if path is None:
        raise ConfigError("data_dir", root, f"a directory holding {source.folder}/ or {source.archive} "
                          "(add --download to fetch it there)")
    batches = _read_batches(path, source)
    x_train, y_train = _join([batches[f] for f in source.train], source)
    x_val, y_val = _join([batches[f] for f in source.test], source)
    mean, std = channel_stats(x_train)
    return Cifar(name, x_train, y_train, x_val, y_val, mean, std, source.classes)


def _read_batches(path: Path, source: CifarSource) -> dict[str, dict]:
    """Every batch file of the set, unpickled, by file name."""
    wanted = set(source.train + source.test)
    found: dict[str, dict] = {}
    try:
        if path.is_dir():
            for name in wanted:
                if (path / name).is_file():
                    found[name] = _unpickle((path / name).read_bytes())
        else:
            with tarfile.open(path, "r:gz") as archive:
                for member in archive:
                    name = member.name.rsplit("/", 1)[-1]
                    if member.isfile() and name in wanted and member.name.startswith(source.folder + "/"):
                        found[name] = _unpickle(archive.extractfile(member).read())
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise ConfigError("data_dir", str(path), f"a readable CIFAR archive or folder ({exc})") from None
    missing = sorted(wanted - set(found))
    if missing:
        raise ConfigError("data_dir", str(path), f"the CIFAR files {', '.join(missing)} (not found there)")
    return found


def _join(batches: list[dict], source: CifarSource) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 3, 32, 32) uint8, labels (N,) int64) of the batches, checked."""
    xs, ys = [], []
    for batch in batches:
        data, labels = batch.get(b"data"), batch.get(source.label_key)
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
                or data.shape[1] != CHANNELS * SIZE * SIZE or not isinstance(labels, list) or len(labels) != len(data):
            raise ConfigError("data_dir", source.folder, "CIFAR batches: uint8 rows of 3,072 values with a "
                              f"{source.label_key.decode()} list of the same length")
        y = torch.as_tensor(list(labels), dtype=torch.int64)
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= source.classes):
            raise ConfigError("data_dir", source.folder, f"labels from 0 to {source.classes - 1}")
        xs.append(torch.from_numpy(np.ascontiguousarray(data)).reshape(-1, CHANNELS, SIZE, SIZE).clone())
        ys.append(y)
    return torch.cat(xs), torch.cat(ys)


def channel_stats(x: torch.Tensor, chunk: int = 10_000) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 images scaled to [0, 1], summed exactly
    in integers chunk by chunk (no float copy of the whole set)."""
    n = x.shape[0] * x.shape[2] * x.shape[3]
    sums = torch.zeros(x.shape[1], dtype=torch.int64)
    squares = torch.zeros(x.shape[1], dtype=torch.int64)
    for begin in range(0, len(x), chunk):
        part = x[begin: begin + chunk].to(torch.int64)
        sums += part.sum(dim=(0, 2, 3))
        squares += (part * part).sum(dim=(0, 2, 3))
    mean = sums.double() / n
    std = (squares.double() / n - mean * mean).clamp(min=0).sqrt()
    return tuple((mean / 255).tolist()), tuple((std / 255).clamp(min=1e-6).tolist())


# -- a pickle that may only build numpy arrays ------------------------------------------------
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("_codecs", "encode")}  # how Python 3 writes bytes at pickle protocol 2


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a CIFAR batch")
        if module.startswith("numpy.core"):  # numpy 2 keeps these in numpy._core
            try:
                return getattr(importlib.import_module(module.replace("numpy.core", "numpy._core")), name)
            except ImportError:
                pass
        return getattr(importlib.import_module(module), name)


def _unpickle(raw: bytes) -> dict:
    """One batch file: Python 2 pickles, hence bytes keys (encoding "bytes")."""
    try:
        batch = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise ConfigError("data_dir", "a CIFAR batch", f"a pickled CIFAR batch ({exc})") from None
    if not isinstance(batch, dict):
        raise ConfigError("data_dir", type(batch).__name__, "a pickled dict (a CIFAR batch)")
    return batch


def _source(name: str) -> CifarSource:
    if name not in SOURCES:
        raise ConfigError("dataset", name, "one of " + ", ".join(SOURCES))
    return SOURCES[name]
