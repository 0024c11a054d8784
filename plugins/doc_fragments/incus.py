# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Connection options of every incus_* module (plugins/module_utils/incus.py connection_argument_spec)."""

    DOCUMENTATION = r"""
options:
  endpoint:
    description:
      - Where the Incus API is.
      - V(unix:/path/to/unix.socket) for the local daemon (the module then runs on the Incus host,
        for example with C(delegate_to)), or V(https://host:8443) for a remote one with O(client_cert)
        and O(client_key).
      - If not set, the value of the E(INCUS_ENDPOINT) environment variable is used.
    type: str
    default: unix:/var/lib/incus/unix.socket
  client_cert:
    description:
      - Path to the PEM client certificate trusted by the remote server (C(incus config trust add-certificate)).
      - Only used with an HTTPS O(endpoint); requires O(client_key).
      - If not set, the value of the E(INCUS_CLIENT_CERT) environment variable is used.
    type: path
  client_key:
    description:
      - Path to the PEM private key of O(client_cert).
      - If not set, the value of the E(INCUS_CLIENT_KEY) environment variable is used.
    type: path
  server_cert:
    description:
      - Path to the PEM certificate of the remote server; the connection is pinned to its fingerprint
        (Incus servers use self-signed certificates).
      - When not given, O(verify) decides whether the server certificate is checked against the system CAs.
      - If not set, the value of the E(INCUS_SERVER_CERT) environment variable is used.
    type: path
  verify:
    description:
      - Check the HTTPS server certificate against the system CAs when O(server_cert) is not given.
      - V(false) disables the check; use only in throw-away test setups.
    type: bool
    default: true
  project:
    description:
      - Incus project to work in.
    type: str
    default: default
requirements:
  - pylxd >= 2.4 (C(pip install pylxd)) on the host that runs the module
"""
