"""Route modules of the control plane, one per resource; each exposes `router`."""
