"""The cockpit's screens and dialogs."""
