"""swattn: sparse (sliding-window + global) attention accelerator generator."""

__version__ = "0.1.0"
