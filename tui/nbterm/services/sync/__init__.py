"""Notebook sync: rsync over OpenSSH through nbterm's generated ssh config."""
