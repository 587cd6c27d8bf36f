"""What auditors use: the trail rebuilt from chain events, its verification, the operation logs
and their Merkle batches anchored on chain."""
