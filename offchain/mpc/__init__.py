"""Secret-sharing MPC engine: joint statistics over several providers' data, computed by at
least three compute nodes (MPyC, Shamir, honest majority, passive security); only the
consumer reconstructs the outputs.

Provider side: :func:`sharing.share_inputs`. Coordinator: :func:`session.run_joint`.
Consumer: :func:`session.open_outputs`. Node processes: ``python -m offchain.mpc.node``.
The statistics (:mod:`stats`) sit on a small protocol layer (:mod:`protocol`); importing
either starts MPyC's runtime, so only node processes import them. See docs/mpc.md.
"""
