"""``sporax.parallel``: layout math, data parallelism and the communication plan.

- :mod:`~sporax.parallel.layout`: which window of a tensor each rank holds (pure functions);
- :func:`comm_plan` / :func:`summary`: what a data-parallel step communicates (fusion buckets,
  collectives, per-device bytes), read from the Parameters' flags; :func:`optimizer_shard_plan`:
  what the parallel optimizer shards (:mod:`~sporax.parallel.opt_shard` runs it);
- :mod:`~sporax.parallel.data_parallel`: step cells run under ``shard_map`` over the
  data-parallel devices; :func:`get_device_values` / :func:`set_device_values` for the
  per-device replicas of ``layerwise_parallel`` parameters;
- ``python -m sporax msrun``: :mod:`~sporax.parallel.msrun`, MindSpore's launcher.
"""

from sporax.parallel import layout
from sporax.parallel.data_parallel import broadcast_parameters, compiled_text, get_device_values, set_device_values
from sporax.parallel.layout import Layout, to_mesh_and_spec
from sporax.parallel.plan import (
                                  Bucket,
                                  Collective,
                                  CommPlan,
                                  OptShard,
                                  OptShardPlan,
                                  comm_plan,
                                  optimizer_shard_plan,
                                  summary,
                                  zero_bytes,
)

__all__ = ["layout", "Layout", "to_mesh_and_spec", "comm_plan", "summary", "CommPlan", "Bucket", "Collective",
           "get_device_values", "set_device_values", "broadcast_parameters", "compiled_text", "OptShard",
           "OptShardPlan", "optimizer_shard_plan", "zero_bytes"]

_CHECKPOINT_NAMES = ("build_searched_strategy", "merge_sliced_parameter", "load_distributed_checkpoint",
                     "transform_checkpoints", "transform_checkpoint_by_rank", "rank_list_for_transform")


def __getattr__(name):
    # mindspore.parallel's checkpoint functions live in sporax.train (loaded on first use: no import cycle)
    if name in _CHECKPOINT_NAMES:
        from sporax.train import serialization

        return getattr(serialization, name)
    raise AttributeError(f"module 'sporax.parallel' has no attribute {name!r}")
