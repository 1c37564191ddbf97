"""Wires api + gateway + control + backend into one process for `podium up`."""
