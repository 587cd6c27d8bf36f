"""Private set intersection between data providers (seed 002 §3.4.4.2): ECDH-PSI over X25519.

``normalize`` brings differently formatted ID columns to one form, ``ecdh`` holds the pure
crypto (hash to a point, blinding in parallel), ``protocol`` the parties' state machines
(messages in, messages out), ``channel`` the DID-sealed frames over TCP or memory, and
``session.run_psi`` runs every party's side and returns a :class:`PsiOutcome`. See docs/psi.md.
Kept import-light: worker processes import ``offchain.psi.ecdh`` only."""
