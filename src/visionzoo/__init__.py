"""visionzoo: twenty vision research methods on one shared core.

    import visionzoo
    model = visionzoo.create_model("slimclr_tiny")
    visionzoo.save_pretrained(model, "out"); model = visionzoo.from_pretrained("out")
"""

__version__ = "0.1.0"

from visionzoo.api import (create_model, from_pretrained, get_method, list_methods, list_models,  # noqa: E402
                           load_recipe, save_pretrained, train)

__all__ = ["create_model", "from_pretrained", "save_pretrained", "train", "load_recipe", "list_models",
           "list_methods", "get_method", "__version__"]
