"""``mindspore.dataset`` on Grain: sources, samplers, operations, iterators, transforms.

    import mindspore.dataset as ds
    import mindspore.dataset.vision as vision
    data = ds.GeneratorDataset(source, ["image", "label"], shuffle=True)
    data = data.map(vision.Rescale(1 / 255, 0), "image").batch(32, drop_remainder=True)
    for image, label in data.create_tuple_iterator(): ...

Every MindSpore operation is one transformation of a Grain pipeline (see
:mod:`sporax.dataset.datasets`); vision transforms use numpy and Pillow.
"""

try:  # before any submodule, so that a missing Grain leaves no half-imported sporax.dataset.* behind
    import grain as _grain  # noqa: F401
except ImportError as _e:
    raise ModuleNotFoundError(
        "mindspore.dataset (sporax.dataset) needs Grain, which is not installed: pip install 'sporax[dataset]' "
        "(or pip install 'grain>=0.2.12,<0.3').", name="grain") from _e

from sporax.dataset import config, samplers, transforms, vision  # noqa: F401
from sporax.dataset._graph import BatchInfo
from sporax.dataset.datasets import Dataset, zip  # noqa: A004  (MindSpore's name)
from sporax.dataset.file_datasets import Cifar10Dataset, Cifar100Dataset, ImageFolderDataset, MnistDataset
from sporax.dataset.iterators import DictIterator, TupleIterator
from sporax.dataset.samplers import (
    DistributedSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    SubsetSampler,
)
from sporax.dataset.sources import GeneratorDataset, MappableDataset, NumpySlicesDataset

__all__ = ["Dataset", "MappableDataset", "GeneratorDataset", "NumpySlicesDataset", "MnistDataset", "Cifar10Dataset",
           "Cifar100Dataset", "ImageFolderDataset", "Sampler", "SequentialSampler", "RandomSampler",
           "DistributedSampler", "SubsetRandomSampler", "SubsetSampler", "TupleIterator", "DictIterator", "BatchInfo",
           "zip", "config", "transforms", "vision", "samplers"]
