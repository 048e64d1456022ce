"""Method packages; importing this module registers every implemented method and its models."""

from visionzoo.methods.ssl import slimclr  # noqa: F401
from visionzoo.methods.ssl import mae  # noqa: F401
from visionzoo.methods.ssl import deepmim  # noqa: F401
from visionzoo.methods.ssl import tinymim  # noqa: F401
from visionzoo.methods.vl import clip  # noqa: F401
