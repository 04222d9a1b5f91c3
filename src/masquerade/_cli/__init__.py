"""The ``masquerade`` command's subcommands, one module each."""
