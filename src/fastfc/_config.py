"""Version and build configuration of fastfc."""
__version__ = "0.1.0"
