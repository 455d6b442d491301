"""The package version, in a leaf module: reading it must not import the application factory (``app``)."""

__version__ = "0.1.0"
