"""The one process layer: ``/proc`` readers, profiles and the "lingering" judgement.

Shared by the ``processes`` collector and the ``netmedic_reaper`` module, which
imports it from the installed agent (``agent_path``), so the finding the agent
reports and the guards the module checks before a signal read the same facts:

- :mod:`netmedic.procs.table`: ``stat`` (one parser), the process table in one
  pass, ``cmdline``/``exe``, open ``/dev/net/tun`` descriptors, lock files;
- :mod:`netmedic.procs.profiles`: declared profiles, matching, ``orphaned`` and
  ``lingering`` (defined once);
- :mod:`netmedic.procs.reap`: the signal ladder with its guards (module only);
- :mod:`netmedic.procs.vpnc`: what a killed vpnc-script client left, and its restore.
"""
