"""A small CIFAR-format fixture in the official "python version" layout: pickled dicts with bytes
keys (as Python 2's cPickle wrote them), b"data" uint8 rows of 3,072 values and b"labels" (CIFAR-10:
data_batch_1..5, test_batch, batches.meta) or b"fine_labels" / b"coarse_labels" (CIFAR-100: train,
test, meta), as an extracted folder and as the .tar.gz."""
from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np

LAYOUT = {  # name -> (folder, archive, {file: images}, label key, classes)
    "cifar10": ("cifar-10-batches-py", "cifar-10-python.tar.gz",
                {**{f"data_batch_{i}": 40 for i in range(1, 6)}, "test_batch": 100}, b"labels", 10),
    "cifar100": ("cifar-100-python", "cifar-100-python.tar.gz", {"train": 200, "test": 100}, b"fine_labels", 100),
}


def images(n: int, classes: int, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """`n` learnable images: each class a colour and a bright square at a class-given place."""
    labels = [int(v) for v in rng.integers(0, classes, n)]
    data = rng.integers(0, 60, (n, 3, 32, 32), dtype=np.uint8)
    for i, label in enumerate(labels):
        data[i, label % 3] += np.uint8(80 + (label * 37) % 100)
        r, c = (label * 7) % 24, (label * 11) % 24
        data[i, :, r: r + 8, c: c + 8] = 250
    return data.reshape(n, 3072), labels


def write_cifar(root: Path, name: str = "cifar10", extracted: bool = True, archive: bool = True,
                seed: int = 0) -> Path:
    """The fixture of `name` under `root` (folder and/or .tar.gz); returns `root`."""
    folder, archive_name, files, label_key, classes = LAYOUT[name]
    rng = np.random.default_rng(seed)
    build = root / "build" / folder
    build.mkdir(parents=True, exist_ok=True)
    for file, n in files.items():
        data, labels = images(n, classes, rng)
        batch = {b"batch_label": file.encode(), label_key: labels, b"data": data,
                 b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
        if name == "cifar100":
            batch[b"coarse_labels"] = [v // 5 for v in labels]
        (build / file).write_bytes(pickle.dumps(batch, protocol=2))
    meta = "batches.meta" if name == "cifar10" else "meta"
    (build / meta).write_bytes(pickle.dumps({b"label_names": [b"c%d" % i for i in range(classes)]}, protocol=2))
    if archive:
        with tarfile.open(root / archive_name, "w:gz") as tar:
            tar.add(build, arcname=folder)
    if extracted:
        build.rename(root / folder)
    return root
