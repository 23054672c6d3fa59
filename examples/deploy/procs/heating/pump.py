# distkv:
#   mode: async
#   vars: [pump]
#   default: {setpoint: 21.5, interval: 60}
#   requires: [util.pid]
#   info: Drive a boiler pump towards the set temperature

import anyio
from util.pid import PID

pid = PID(kp=0.3, ki=0.01)
while True:
    temp = (await _client.get(_P(f"heating.temp.{pump}"))).get("value", setpoint)
    speed = pid.step(setpoint - temp, interval)
    await _client.set(_P(f"heating.pump.{pump}.speed"), value=speed)
    await anyio.sleep(interval)
