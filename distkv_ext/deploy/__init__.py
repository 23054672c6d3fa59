"""Deploying a directory of procedures, modules and jobs to DistKV.

Public API::

    tree = read_tree("deploy/")                 # read and check every file
    plan = await plan_deploy(client, tree, prune=False, pin=False)  # name=: the tree (its manifest)
    for ch in plan.pending: print(ch.action, ch.label, ch.diff)
    result = await apply_deploy(client, plan)   # DeployRefused / DeployConflict

``distkv client code deploy DIR`` is these three steps.  The layout of the
directory is described in `read_tree` and the README; what a deploy
records of what it wrote (so that ``--prune`` removes only that) in
`Manifest` (``distkv_ext/deploy/_manifest.py``).
"""

from ._apply import STEPS, DeployConflict, DeployRefused, Result, apply_deploy
from ._change import Change, Plan, Prefixes
from ._layout import JOB_DEFAULTS, Item, Tree, read_tree
from ._manifest import MANIFEST_PREFIX, Manifest, check_tree_name, entry_hash, read_manifests
from ._plan import plan_deploy

__all__ = [
    "read_tree",
    "plan_deploy",
    "apply_deploy",
    "Tree",
    "Item",
    "Plan",
    "Change",
    "Prefixes",
    "Result",
    "DeployRefused",
    "DeployConflict",
    "STEPS",
    "JOB_DEFAULTS",
    "MANIFEST_PREFIX",
    "Manifest",
    "read_manifests",
    "check_tree_name",
    "entry_hash",
]
