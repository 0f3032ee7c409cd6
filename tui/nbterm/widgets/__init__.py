"""The cockpit's panes: each owns its rendering."""
