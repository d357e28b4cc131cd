"""netmedic agent: host facts and diagnosis of known failure patterns."""

__version__ = "0.1.0"

# The facts document's contract version; breaking the JSON shape bumps it.
# 2: a port's owner has no cmdline (the processes family keeps it).
SCHEMA_VERSION = 2
