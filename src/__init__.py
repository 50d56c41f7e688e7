"""h2oGPT offline: engine, parameters, settings and document Q&A."""

__version__ = "0.1.0"
