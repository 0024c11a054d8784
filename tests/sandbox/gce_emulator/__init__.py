"""A local Compute Engine v1 emulator: REST API, metadata server and fault injection.

Instances are backed by Incus containers (or by nothing in --no-containers mode).
See README.md next to this file.
"""
