"""Where replicas run. `local`: OS processes on this machine (default); `ray` later."""
