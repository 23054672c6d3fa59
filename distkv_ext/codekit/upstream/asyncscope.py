"""Repair of asyncscope's logging of failed DistKV connections.

asyncscope logs a failed connection with a full traceback (logger
``scope.distkv.client``) before the caller gets, and reports as one line,
the same exception.  `apply` silences that copy.
"""

import logging

__all__ = ["apply", "quiet_connect_errors", "PACKAGE", "TARGET"]

PACKAGE = "asyncscope"
#: The release this repair was written for (see `distkv_ext.codekit.upstream`).
TARGET = "0.11.1"


def quiet_connect_errors():
    """Silence asyncscope's traceback of a failed DistKV connection."""
    logging.getLogger("scope.distkv.client").setLevel(logging.CRITICAL)


apply = quiet_connect_errors
