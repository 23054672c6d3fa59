# distkv:
#   requires: [util]
#   info: A plain PID controller

from util import clamp


class PID:
    def __init__(self, kp, ki=0.0, kd=0.0, lo=0.0, hi=1.0):
        self.kp, self.ki, self.kd, self.lo, self.hi = kp, ki, kd, lo, hi
        self.sum = 0.0
        self.last = None

    def step(self, error, dt=1.0):
        self.sum += error * dt
        d = 0.0 if self.last is None else (error - self.last) / dt
        self.last = error
        return clamp(self.kp * error + self.ki * self.sum + self.kd * d, self.lo, self.hi)
