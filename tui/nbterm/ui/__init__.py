"""The cockpit's glue: service events as Textual messages, hosts driven from workers."""
