"""Operator classes of ``mindspore.ops.operations`` (``from mindspore.ops import operations as P``).

Grouped as MindSpore groups them: :mod:`math_ops`, :mod:`array_ops`, :mod:`nn_ops` (with the
``Apply*`` optimizer primitives) and :mod:`other_ops`; the families added for issue 12 item 4 in
:mod:`math_ext_ops`, :mod:`array_ext_ops`, :mod:`nn_ext_ops`, :mod:`linalg_random_ops` and
:mod:`image_segment_ops` (checked against MindSpore 2.10 by ``tests/ops/test_op_families.py``).
"""

from sporax.ops.operations import (
    array_ext_ops,
    array_ops,
    conv_box_ops,
    image_segment_ops,
    linalg_random_ops,
    math_ext_ops,
    math_ops,
    nn_ext_ops,
    nn_ops,
    other_ops,
)
from sporax.ops.operations.array_ext_ops import *  # noqa: F403
from sporax.ops.operations.array_ops import *  # noqa: F403
from sporax.ops.operations.conv_box_ops import *  # noqa: F403
from sporax.ops.operations.image_segment_ops import *  # noqa: F403
from sporax.ops.operations.linalg_random_ops import *  # noqa: F403
from sporax.ops.operations.math_ext_ops import *  # noqa: F403
from sporax.ops.operations.math_ops import *  # noqa: F403
from sporax.ops.operations.nn_ext_ops import *  # noqa: F403
from sporax.ops.operations.nn_ops import *  # noqa: F403
from sporax.ops.operations.other_ops import *  # noqa: F403
from sporax.ops.primitive import Primitive, PrimitiveWithCheck, PrimitiveWithInfer, prim_attr_register

__all__ = [*math_ops.__all__, *array_ops.__all__, *nn_ops.__all__, *other_ops.__all__, *math_ext_ops.__all__,
           *array_ext_ops.__all__, *nn_ext_ops.__all__, *linalg_random_ops.__all__, *image_segment_ops.__all__,
           *conv_box_ops.__all__,            "Primitive", "PrimitiveWithInfer", "PrimitiveWithCheck", "prim_attr_register"]
