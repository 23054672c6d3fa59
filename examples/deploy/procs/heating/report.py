# distkv:
#   mode: async
#   info: Log the pump speeds once

speeds = {}
async for r in _client.get_tree(_P("heating.pump")):
    speeds[str(r.path)] = r.value
_log.info("pump speeds: %s", speeds)
return speeds
