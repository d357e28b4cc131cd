"""netmedic agent: host facts and diagnosis of known failure patterns."""

# The one version of the agent and of the collection netmedic.remediation that ships it
# (galaxy.yml repeats it; agent/tests/test_version.py checks they agree).
__version__ = "0.2.0"

# The facts document's contract version; breaking the JSON shape bumps it.
# 2: a port's owner has no cmdline (the processes family keeps it).
SCHEMA_VERSION = 2
