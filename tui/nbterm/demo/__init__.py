"""``nbterm --demo``: a whole world on 127.0.0.1 for the real app, with no AWS and no sshd."""
