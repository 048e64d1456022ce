"""visionzoo: twenty vision research methods on one shared core."""
__version__ = "0.1.0"
