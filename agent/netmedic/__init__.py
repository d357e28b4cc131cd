"""netmedic agent: host facts and diagnosis of known failure patterns."""

__version__ = "0.1.0"

# The facts document's contract version; breaking the JSON shape bumps it.
SCHEMA_VERSION = 1
