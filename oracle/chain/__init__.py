"""The chain: embedded node lifecycle, Web3 connection, compiler, transactions, deployment."""
