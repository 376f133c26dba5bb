"""Fashion-MNIST (Zalando, 28x28 grayscale product photos, 10 classes): the vision recipe's data.

Two local forms are accepted under `<data_dir>/fashion-mnist/`: the project's `{train,test}.npz`
(pinned by sha256) or Zalando's four official IDX `.gz` files (pinned by the md5 sums Zalando
publishes). When neither is present the IDX files are downloaded; they are kept as downloaded, so a
later load verifies them the same way and nothing derived ever needs a digest of its own.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pydantic

from mobilekd.data import Dataset, DatasetInfo, Split, parse_options
from mobilekd.data.download import fetch, resolve_data_dir, verify
from mobilekd.errors import DataError
from mobilekd.specs import StrictModel, TensorSpec

FOLDER = "fashion-mnist"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MEAN, STD = 0.2860, 0.3530  # of pixel/255 over the training images, as published
NPZ_SHA256 = {
    "train": "d788a6022a3c39c6739de36617adff5b111731f32d8e8110d65143dee603c668",
    "test": "1f9c2a0e67b474a8e246dfc0dc855238449cee2ea2dd763122e1751afaffc75c",
}
# Official files and the md5 sums Zalando's README (and torchvision) publish.
MIRRORS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)
IDX_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
IDX_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
             "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
LICENSE = "MIT, Copyright (c) 2017 Zalando SE"
CITATION = (
    "Xiao, H., Rasul, K. & Vollgraf, R. (2017). Fashion-MNIST: a Novel Image Dataset for Benchmarking "
    "Machine Learning Algorithms. arXiv:1708.07747"
)
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class FashionMNISTOptions(StrictModel):
    val_fraction: float = pydantic.Field(0.1, gt=0.0, lt=1.0)  # of the 60,000 training images
    limit_train: int | None = pydantic.Field(None, gt=0)  # quick runs: first N after the shuffle
    limit_test: int | None = pydantic.Field(None, gt=0)


def read_idx(data: bytes, *, name: str = "IDX") -> np.ndarray:
    """Parse an (uncompressed) IDX file: 2 zero bytes, dtype code, ndim, ndim big-endian uint32
    dimensions, then the values in C order. Raises DataError on anything malformed."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{name}: not an IDX file (magic bytes {data[:4].hex()!r})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataError(f"{name}: IDX header truncated (ndim {ndim}, {len(data)} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(f"{name}: IDX shape {shape} needs {expected} bytes of values, file has {len(data) - header}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _read_part(folder: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N,28,28), labels uint8 (N,)) of 'train' or 'test', downloading if needed."""
    npz = folder / f"{part}.npz"
    if npz.exists():
        verify(npz, NPZ_SHA256[part])
        with np.load(npz) as z:
            return z["images"], z["labels"]
    arrays = []
    for fname in IDX_FILES[part]:
        path = folder / fname
        if path.exists():
            verify(path, IDX_MD5[fname], algorithm="md5")
        else:
            folder.mkdir(parents=True, exist_ok=True)
            fetch(tuple(m + fname for m in MIRRORS), path, expected=IDX_MD5[fname], algorithm="md5")
        arrays.append(read_idx(gzip.decompress(path.read_bytes()), name=str(path)))
    images, labels = arrays
    if images.shape[1:] != (28, 28) or images.shape[0] != labels.shape[0]:
        raise DataError(f"{folder}: {part} images {images.shape} and labels {labels.shape} do not match")
    return images, labels


def _to_input(images: np.ndarray) -> np.ndarray:
    return ((images.astype(np.float32) / 255.0 - MEAN) / STD)[:, None, :, :]


def load(data_dir: Path | None = None, *, seed: int, val_fraction: float = 0.1,
         limit_train: int | None = None, limit_test: int | None = None) -> Dataset:
    """Fashion-MNIST as float32 (N, 1, 28, 28), (pixel/255 - 0.2860) / 0.3530; labels int64.

    The stored rows are grouped by class, so train and test are shuffled with `seed` before the
    validation share is cut and before any limit is applied (a limit keeps every class).
    """
    opts = parse_options(FashionMNISTOptions, "fashion_mnist",
                         val_fraction=val_fraction, limit_train=limit_train, limit_test=limit_test)
    folder = resolve_data_dir(data_dir) / FOLDER
    rng = np.random.default_rng(seed)
    tr_img, tr_lab = _read_part(folder, "train")
    te_img, te_lab = _read_part(folder, "test")
    order = rng.permutation(len(tr_lab))
    n_val = int(round(opts.val_fraction * len(order)))
    val_idx, train_idx = order[:n_val], order[n_val:]
    if opts.limit_train is not None:
        train_idx = train_idx[: opts.limit_train]
        val_idx = val_idx[: max(1, int(round(opts.limit_train * opts.val_fraction)))]
    test_idx = rng.permutation(len(te_lab))[: opts.limit_test]

    def split(images: np.ndarray, labels: np.ndarray, index: np.ndarray) -> Split:
        return Split({"image": _to_input(images[index])}, labels[index].astype(np.int64))

    low, high = (0.0 - MEAN) / STD, (1.0 - MEAN) / STD
    info = DatasetInfo(
        name="fashion_mnist",
        task="classification",
        inputs=(TensorSpec(name="image", dtype="float32", shape=(1, 1, 28, 28), low=low, high=high),),
        num_outputs=10,
        labels=CLASSES,
        preprocessing={"layout": "NCHW", "scale": "pixel/255", "mean": MEAN, "std": STD,
                       "formula": "(pixel/255 - mean) / std", "range": [low, high]},
        postprocessing={"output": "logits over labels; argmax is the class"},
        license=LICENSE,
        citation=CITATION,
        notes=("rows shuffled with the seed; validation is a seeded share of the official training set",),
    )
    return Dataset(info=info, train=split(tr_img, tr_lab, train_idx), val=split(tr_img, tr_lab, val_idx),
                   test=split(te_img, te_lab, test_idx))
