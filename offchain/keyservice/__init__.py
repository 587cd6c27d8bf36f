"""The provider's key service: release rules (:mod:`.release`), on-chain checks per job
(:mod:`.provider`), its DID-authenticated HTTP API (:mod:`.api`) and the wiring that serves it
(:mod:`.service`). Layer keys and plaintext aggregates never leave it unsealed."""
