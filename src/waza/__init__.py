"""waza: runtime telemetry for AI agent skills.

The public API is ``waza.telemetry`` (and the ``waza`` command); every other
package says it is internal.
"""

__version__ = "0.2.0"
