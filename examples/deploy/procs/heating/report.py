# distkv:
#   mode: async
#   info: Log the pump speeds once

from distkv.exceptions import ServerError

# This job runs on its own schedule, not after the pumps: on its first run
# no pump may have written a speed yet, and DistKV answers a walk of a path
# that does not exist with KeyError.  Then there is nothing to report yet.
speeds = {}
try:
    async for r in _client.get_tree(_P("heating.pump")):
        speeds[str(r.path)] = r.value
except ServerError as exc:
    if not str(exc).startswith("KeyError"):
        raise
_log.info("pump speeds: %s", speeds)
return speeds
