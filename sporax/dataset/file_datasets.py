"""The file datasets of the tutorials, over the standard on-disk formats:

- ``MnistDataset``: the idx files (``train-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, ...);
  rows ``image`` <28, 28, 1> uint8 and ``label`` uint32.
- ``Cifar10Dataset``: the binary batches (``data_batch_1.bin`` .. ``data_batch_5.bin``,
  ``test_batch.bin``; 1 label byte + 3072 CHW bytes per record); ``image`` <32, 32, 3> uint8,
  ``label`` uint32.
- ``Cifar100Dataset``: ``train.bin``/``test.bin`` (coarse byte, fine byte, 3072 bytes);
  ``image``, ``coarse_label``, ``fine_label``.
- ``ImageFolderDataset``: one sub-directory per class (sorted names -> labels 0, 1, ...);
  ``image`` the file's bytes (<N> uint8, or decoded RGB with ``decode=True``), ``label`` int32.

Files are memory-mapped and read row by row, so a worker process touches only its rows.
"""

from __future__ import annotations

import os

import numpy as np

from sporax.common._validation import msg
from sporax.dataset.datasets import _check_workers
from sporax.dataset.sources import MappableDataset

__all__ = ["MnistDataset", "Cifar10Dataset", "Cifar100Dataset", "ImageFolderDataset"]


def _check_dir(dataset_dir, where: str) -> str:
    if not isinstance(dataset_dir, (str, os.PathLike)):
        raise TypeError(msg(where, "dataset_dir", "a directory path (str)", type(dataset_dir).__name__))
    path = os.fspath(dataset_dir)
    if not os.path.isdir(path) or not os.access(path, os.R_OK):
        raise ValueError(f"The folder {path} does not exist or is not a directory or permission denied!")
    return path


def _check_usage(usage, choices, where: str) -> str:
    usage = "all" if usage is None else usage
    if usage not in choices:
        raise ValueError(msg(where, "usage", f"one of {list(choices)}", usage))
    return usage


class _FileDataset(MappableDataset):
    def __init__(self, where, num_samples, num_parallel_workers, shuffle, sampler, num_shards, shard_id) -> None:
        names = self._col_names  # set by the subclass before calling here
        super().__init__([], _check_workers(num_parallel_workers, where))
        self._col_names = names
        self._init_sampling(where, num_samples, shuffle, sampler, num_shards, shard_id)


# ------------------------------------------------------------------------------------ MNIST
_MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _read_idx(path: str, magic: int) -> np.ndarray:
    with open(path, "rb") as f:
        head = np.frombuffer(f.read(4), dtype=">u4")
    if len(head) != 1 or int(head[0]) != magic:
        raise RuntimeError(f"Invalid data, {path} is not an MNIST idx file (magic number {magic:#x} expected).")
    ndim = magic & 0xFF
    with open(path, "rb") as f:
        dims = tuple(int(d) for d in np.frombuffer(f.read(4 + 4 * ndim)[4:], dtype=">u4"))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise RuntimeError(f"Invalid data, {path} holds {data.size} bytes but its header says {dims}.")
    return data.reshape(dims)


class _MnistRows:
    def __init__(self, pairs) -> None:
        self.images = [im for im, _ in pairs]
        self.labels = [lb for _, lb in pairs]
        self.offsets = np.cumsum([0] + [len(lb) for lb in self.labels])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int):
        f = int(np.searchsorted(self.offsets, index, side="right") - 1)
        i = index - int(self.offsets[f])
        return np.array(self.images[f][i])[:, :, None], np.uint32(self.labels[f][i])


class MnistDataset(_FileDataset):
    """MNIST from its idx files in ``dataset_dir`` (``usage``: 'train', 'test' or 'all')."""

    def __init__(self, dataset_dir, usage=None, num_samples=None, num_parallel_workers=None, shuffle=None,
                 sampler=None, num_shards=None, shard_id=None, cache=None) -> None:
        where = "MnistDataset"
        path = _check_dir(dataset_dir, where)
        usage = _check_usage(usage, ("train", "test", "all"), where)
        pairs = []
        for part in (("train", "test") if usage == "all" else (usage,)):
            img_f, lbl_f = (os.path.join(path, f) for f in _MNIST_FILES[part])
            if not (os.path.isfile(img_f) and os.path.isfile(lbl_f)):
                if usage == "all":
                    continue
                raise RuntimeError(f"Invalid data, MnistDataset API can't read the data file (interface mismatch or no "
                                   f"data found). Check mnist file in directory: {path} (expected "
                                   f"{_MNIST_FILES[part][0]} and {_MNIST_FILES[part][1]}).")
            images, labels = _read_idx(img_f, 0x803), _read_idx(lbl_f, 0x801)
            if len(images) != len(labels):
                raise RuntimeError(f"Invalid data, {img_f} has {len(images)} images but {lbl_f} has {len(labels)} "
                                   "labels.")
            pairs.append((images, labels))
        if not pairs:
            raise RuntimeError(f"Invalid data, MnistDataset API can't read the data file (interface mismatch or no data "
                               f"found). Check mnist file in directory: {path} (expected train-images-idx3-ubyte / "
                               "train-labels-idx1-ubyte and/or t10k-images-idx3-ubyte / t10k-labels-idx1-ubyte).")
        self.dataset_dir, self.usage = path, usage
        self._data = _MnistRows(pairs)
        self._col_names = ["image", "label"]
        super().__init__(where, num_samples, num_parallel_workers, shuffle, sampler, num_shards, shard_id)

    def _rows(self):
        return self._data


# ------------------------------------------------------------------------------------ CIFAR
class _CifarRows:
    def __init__(self, files, label_bytes: int) -> None:
        self.label_bytes = label_bytes
        rec = label_bytes + 3072
        self.maps = []
        for f in files:
            size = os.path.getsize(f)
            if size == 0 or size % rec:
                raise RuntimeError(f"Invalid data, {f} is not a CIFAR binary batch: its size {size} is not a multiple "
                                   f"of the record size {rec}.")
            self.maps.append(np.memmap(f, dtype=np.uint8, mode="r").reshape(-1, rec))
        self.offsets = np.cumsum([0] + [len(m) for m in self.maps])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int):
        f = int(np.searchsorted(self.offsets, index, side="right") - 1)
        r = np.asarray(self.maps[f][index - int(self.offsets[f])])
        image = r[self.label_bytes:].reshape(3, 32, 32).transpose(1, 2, 0).copy()
        return (image, *(np.uint32(r[i]) for i in range(self.label_bytes)))


def _cifar_files(path, names, where) -> list[str]:
    files = [os.path.join(path, n) for n in names]
    missing = [n for n, f in zip(names, files) if not os.path.isfile(f)]
    if missing:
        raise RuntimeError(f"Invalid data, {where} can't find the CIFAR binary files {missing} in {path}; download "
                           "the binary version of the data set and extract it there.")
    return files


class Cifar10Dataset(_FileDataset):
    """CIFAR-10 from its binary batches in ``dataset_dir`` (``usage``: 'train', 'test' or 'all')."""

    def __init__(self, dataset_dir, usage=None, num_samples=None, num_parallel_workers=None, shuffle=None,
                 sampler=None, num_shards=None, shard_id=None, cache=None) -> None:
        where = "Cifar10Dataset"
        path = _check_dir(dataset_dir, where)
        usage = _check_usage(usage, ("train", "test", "all"), where)
        names = ([f"data_batch_{i}.bin" for i in range(1, 6)] if usage in ("train", "all") else []) + (
            ["test_batch.bin"] if usage in ("test", "all") else [])
        self.dataset_dir, self.usage = path, usage
        self._data = _CifarRows(_cifar_files(path, names, where), 1)
        self._col_names = ["image", "label"]
        super().__init__(where, num_samples, num_parallel_workers, shuffle, sampler, num_shards, shard_id)

    def _rows(self):
        return self._data


class Cifar100Dataset(_FileDataset):
    """CIFAR-100 from ``train.bin``/``test.bin`` in ``dataset_dir``."""

    def __init__(self, dataset_dir, usage=None, num_samples=None, num_parallel_workers=None, shuffle=None,
                 sampler=None, num_shards=None, shard_id=None, cache=None) -> None:
        where = "Cifar100Dataset"
        path = _check_dir(dataset_dir, where)
        usage = _check_usage(usage, ("train", "test", "all"), where)
        names = (["train.bin"] if usage in ("train", "all") else []) + (["test.bin"] if usage in ("test", "all") else [])
        self.dataset_dir, self.usage = path, usage
        self._data = _CifarRows(_cifar_files(path, names, where), 2)
        self._col_names = ["image", "coarse_label", "fine_label"]
        super().__init__(where, num_samples, num_parallel_workers, shuffle, sampler, num_shards, shard_id)

    def _rows(self):
        return self._data


# ------------------------------------------------------------------------------------ image folders
_IMG_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class _FolderRows:
    def __init__(self, items, decode: bool) -> None:
        self.items, self.decode = items, decode

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        path, label = self.items[index]
        data = np.fromfile(path, dtype=np.uint8)
        if self.decode:
            from sporax.dataset.vision.transforms import Decode

            data = Decode()._apply1(data, None)
        return data, np.int32(label)


class ImageFolderDataset(_FileDataset):
    """Images in class sub-directories of ``dataset_dir``; labels from the sorted directory names
    (or ``class_indexing``)."""

    def __init__(self, dataset_dir, num_samples=None, num_parallel_workers=None, shuffle=None, sampler=None,
                 extensions=None, class_indexing=None, decode: bool = False, num_shards=None, shard_id=None,
                 cache=None, decrypt=None) -> None:
        where = "ImageFolderDataset"
        path = _check_dir(dataset_dir, where)
        if extensions is not None and (not isinstance(extensions, (list, tuple)) or
                                       not all(isinstance(e, str) for e in extensions)):
            raise TypeError(msg(where, "extensions", "a list of str such as ['.jpg', '.png']", extensions))
        exts = tuple(e.lower() for e in extensions) if extensions else _IMG_EXT
        classes = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
        if class_indexing is not None:
            if not isinstance(class_indexing, dict) or not all(isinstance(v, int) for v in class_indexing.values()):
                raise TypeError(msg(where, "class_indexing", "a dict {class folder name: int label}", class_indexing))
            unknown = sorted(set(class_indexing) - set(classes))
            if unknown:
                raise ValueError(f"For '{where}', 'class_indexing' names folders {unknown} that are not in {path}.")
            index = dict(class_indexing)
            classes = [c for c in classes if c in index]
        else:
            index = {c: i for i, c in enumerate(classes)}
        items = []
        for c in classes:
            folder = os.path.join(path, c)
            for f in sorted(os.listdir(folder)):
                if f.lower().endswith(exts) and os.path.isfile(os.path.join(folder, f)):
                    items.append((os.path.join(folder, f), index[c]))
        if not items:
            raise RuntimeError(f"Invalid data, no images with extensions {list(exts)} found in the class folders of "
                               f"{path}; expected {path}/<class name>/<image file>.")
        self.dataset_dir, self.class_indexing = path, index
        self._data = _FolderRows(items, bool(decode))
        self._col_names = ["image", "label"]
        super().__init__(where, num_samples, num_parallel_workers, shuffle, sampler, num_shards, shard_id)

    def _rows(self):
        return self._data

    def get_class_indexing(self) -> dict:
        return dict(self.class_indexing)
