"""The command line: argument parsing, headless commands, and launching the app."""
