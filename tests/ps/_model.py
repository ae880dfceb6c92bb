"""The small recommendation-style model the PS tests train: an EmbeddingLookup table and a Dense head."""

import numpy as np

import sporax as sp
from sporax import nn

VOCAB, DIM, FIELDS, BATCH = 64, 8, 3, 16


class Net(nn.Cell):
    def __init__(self, cache: int = 0, policy: str = "LRU", vocab: int = VOCAB, dim: int = DIM):
        super().__init__()
        self.emb = nn.EmbeddingLookup(vocab, dim, vocab_cache_size=cache, cache_policy=policy)
        self.fc = nn.Dense(dim, 4)
        self.out = nn.Dense(4, 1)

    def construct(self, ids):
        return self.out(sp.ops.relu(self.fc(self.emb(ids).mean(1))))


def batch(step: int, vocab: int = VOCAB):
    r = np.random.RandomState(step)
    ids = r.randint(0, vocab, (BATCH, FIELDS)).astype(np.int32)
    labels = r.randn(BATCH, 1).astype(np.float32)
    return ids, labels


def build(ps: bool, cache: int = 0, opt: str = "sgd", init_in_server: bool = True, policy: str = "LRU",
          table_only: bool = False):
    """(train step cell, net), built the same way in every process (same seeds, same order).

    ``table_only``: only the embedding table goes to the servers; the Dense head stays on the workers."""
    sp.set_seed(7)
    net = Net(cache, policy)
    if ps and table_only:
        net.emb.embedding_table.set_param_ps(init_in_server=init_in_server)
    elif ps:
        net.set_param_ps(init_in_server=init_in_server)
    if opt == "sgd":
        optimizer = nn.SGD(net.trainable_params(), 0.1)
    elif opt == "momentum":
        optimizer = nn.Momentum(net.trainable_params(), 0.1, 0.9)
    else:  # "adam", "lazy_adam"
        optimizer = nn.Adam(net.trainable_params(), 0.01, use_lazy=opt == "lazy_adam")
    return nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), optimizer), net


def train(cell, steps, start: int = 0, shard=None, batches=None):
    """Train ``steps`` steps from ``start``; ``shard=(i, n)`` takes rows i::n of each batch."""
    loss = None
    for s in range(start, steps):
        ids, labels = (batches or batch)(s)
        if shard is not None:
            i, n = shard
            ids, labels = ids[i::n], labels[i::n]
        loss = cell(sp.Tensor(ids), sp.Tensor(labels))
    return loss


def values(net) -> dict:
    return {p.name: p.asnumpy() for p in net.trainable_params()}
