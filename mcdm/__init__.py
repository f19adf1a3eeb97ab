"""mcdm: compose independently trained diffusion models at sampling time.

The package root stays light on purpose: importing ``mcdm`` (or a plugin) must not import torch,
so ``mcdm --help`` and plugin discovery are instant. Heavy modules are imported where they are used.
"""

__version__ = "0.1.0"
