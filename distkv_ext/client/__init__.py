"""Makes ``distkv client`` work with DistKV 0.65.0 (see `main`)."""
