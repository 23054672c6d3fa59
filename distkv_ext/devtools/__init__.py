"""Tools on top of the whole product: the local node launcher, the demo,
free ports, and the generators of man pages and completion scripts (with
the completion helper).

The only package besides the feature CLIs that may import every feature.
"""
