# distkv:
#   info: Small helpers shared by the heating procedures


def clamp(x, lo, hi):
    return max(lo, min(hi, x))
