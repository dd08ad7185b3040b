"""Command-line tools behind ``aioinfer``: benchmark and run (the CLI only parses and prints)."""
