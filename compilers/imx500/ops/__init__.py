"""The importer's operator builders by family, and the one table of them: operator name ->
``build(ctx, op, name)``, which returns the operator's output (a list for SPLIT, UNPACK)."""
from compilers.imx500.ops import elementwise, reduce, shape, weighted
from compilers.imx500.ops.common import Context, UnsupportedOperator, is_constant, layers
from compilers.imx500.ops.elementwise import activate

BUILDERS = {**weighted.BUILDERS, **elementwise.BUILDERS, **shape.BUILDERS, **reduce.BUILDERS}

__all__ = ["BUILDERS", "Context", "UnsupportedOperator", "activate", "is_constant", "layers"]
