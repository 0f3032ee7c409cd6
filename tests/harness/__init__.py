"""Real parts on loopback for nbterm's tests: OpenSSH sshd, moto's EC2 server, tmux."""
