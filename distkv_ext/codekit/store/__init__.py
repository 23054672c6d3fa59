"""Store access through DistKV's public client API: one-shot entry
operations, connection errors, live mirrors that survive dropped
watches, the history of procedures and modules, and the error tree.

Imports `distkv_ext.codekit.core` only (of this project).
"""
