"""Multi-party collaboration: the description file, its checks against the chain, and the
coordinator that runs each step's engine (PSI, MPC) on the compute node that coordinates it."""
