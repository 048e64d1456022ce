"""Method packages; importing this module registers every implemented method and its models."""

from visionzoo.methods.ssl import slimclr  # noqa: F401
