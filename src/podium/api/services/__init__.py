"""Business rules of the control plane; routes stay thin and call these."""
