"""Plugins registered by default. Each is an ordinary plugin module; disable one with
``MASQUERADE_DISABLE_PLUGINS=<name>``."""
