"""Validate Compute v1 bodies against the official discovery document (google-api-python-client).

    from emulator import discovery_schema
    discovery_schema.validate("Instance", body)      # raises SchemaError listing every problem
    discovery_schema.validate_request("POST", "projects/p/zones/z/instances", body)
    discovery_schema.validate_response("GET", "projects/p/aggregated/instances", body)

The implementation lives in the emulator package (which applies the same document to every
request it receives); this module is the tests' entry point to it.
"""
from __future__ import annotations

import pathlib
import sys

_SANDBOX = pathlib.Path(__file__).resolve().parents[2] / "sandbox"
if str(_SANDBOX) not in sys.path:
    sys.path.insert(0, str(_SANDBOX))

from gce_emulator.discovery import (  # noqa: E402  pylint: disable=wrong-import-position
    DOCUMENT, SchemaError, document, method_for, problems, schema, validate, validate_request,
    validate_response)

__all__ = ["DOCUMENT", "SchemaError", "document", "method_for", "problems", "schema", "validate",
           "validate_request", "validate_response"]
