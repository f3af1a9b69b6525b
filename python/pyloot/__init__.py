"""pyloot: memory-leak detector for Python web servers."""
from pyloot._pyloot import __version__

__all__ = ["__version__"]
