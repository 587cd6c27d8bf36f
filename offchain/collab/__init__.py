"""The provider's side of a collaboration: its node checks each step on chain before it
contributes its own data to a PSI or MPC engine."""
