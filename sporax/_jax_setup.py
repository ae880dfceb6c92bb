"""Configure JAX once, before any sporax module touches it.

64-bit dtypes (Int64, Float64) are part of MindSpore's contract, so sporax enables
``jax_enable_x64``; sporax itself always picks dtypes explicitly, never by JAX defaults.
"""

import jax

jax.config.update("jax_enable_x64", True)
