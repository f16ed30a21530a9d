"""A GKE-like gateway controller and data plane for the sandbox (run with `python -m igw_sandbox.gateway`)."""
