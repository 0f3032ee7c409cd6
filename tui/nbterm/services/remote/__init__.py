"""Remote machines over SSH: connections, host keys, Jupyter, tunnels."""
