"""Python mirrors of on-chain conventions (EIP-712 types) shared by the oracle, benches and tests."""
