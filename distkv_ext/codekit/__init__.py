"""The shared engine of distkv-code, by layer (see ARCHITECTURE.md):

* `distkv_ext.codekit.core`: the kernel (no DistKV connection);
* `distkv_ext.codekit.store`: store access (imports core);
* `distkv_ext.codekit.upstream`: run-time repairs of DistKV, moat-util,
  moat-mqtt and asyncscope, each version-checked;
* `distkv_ext.codekit.cli`: the click-side helpers every command shares.

Nothing here imports a feature package (code, module, run, deploy).
"""
