"""The test servers live in the shipped kit (``ratescript.conformance.servers``)."""

from ratescript.conformance.servers import *  # noqa: F403
from ratescript.conformance.servers import __all__ as __all__
