"""Image generation of the engine process: diffusers pipelines from local directories
(``--visible_image_models``), on their own worker thread (:mod:`src.images.service`)."""
