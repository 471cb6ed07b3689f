"""One module per subcommand; each exposes a function named after the command returning an exit code."""
