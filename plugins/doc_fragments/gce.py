# -*- coding: utf-8 -*-
# Copyright: containarium.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Connection and authentication options of every containarium.fleet GCE module."""

    DOCUMENTATION = r"""
options:
  project:
    description:
      - The Google Cloud project id.
      - Read from the environment variable E(GCP_PROJECT) when not set.
    type: str
    required: true
  auth_kind:
    description:
      - How to obtain credentials.
      - V(serviceaccount) loads a service-account key from O(service_account_file) or
        O(service_account_contents).
      - V(application) uses Application Default Credentials (E(GOOGLE_APPLICATION_CREDENTIALS),
        C(gcloud auth application-default login), or the metadata server on GCE).
      - V(accesstoken) sends O(access_token) as is (no google-auth needed).
      - When not set, it is inferred as V(accesstoken) if O(access_token) is set, V(serviceaccount) if a
        service-account key is set, V(application) otherwise.
      - Read from E(GCP_AUTH_KIND) when not set.
    type: str
    choices: [serviceaccount, application, accesstoken]
  service_account_file:
    description:
      - Path to a service-account JSON key file, for O(auth_kind=serviceaccount).
      - Read from E(GCP_SERVICE_ACCOUNT_FILE) when not set.
    type: path
  service_account_contents:
    description:
      - The service-account JSON key itself (a string or a dictionary), for O(auth_kind=serviceaccount).
      - Read from E(GCP_SERVICE_ACCOUNT_CONTENTS) when not set.
    type: jsonarg
  access_token:
    description:
      - An OAuth2 access token, for O(auth_kind=accesstoken).
      - Read from E(GCP_ACCESS_TOKEN) when not set.
    type: str
  scopes:
    description:
      - OAuth2 scopes requested for service-account and application credentials.
      - Defaults to C(https://www.googleapis.com/auth/compute).
      - Read from E(GCP_SCOPES) (comma separated) when not set.
    type: list
    elements: str
  endpoint:
    description:
      - Base URL of the Compute Engine v1 API, for a private endpoint or a local emulator.
      - Defaults to C(https://compute.googleapis.com/compute/v1/).
      - Read from E(GCP_COMPUTE_ENDPOINT) when not set.
    type: str
  wait_timeout:
    description:
      - Seconds this task may spend waiting for its operations to finish (one deadline for the whole
        task, however many operations it runs).
      - Operations are awaited with the C(operations/{name}/wait) long-poll, so the task notices a
        finished operation at once.
    type: int
    default: 300
requirements:
  - requests
  - google-auth (not needed with O(auth_kind=accesstoken))
notes:
  - Failed calls are retried on HTTP 429 and 5xx and on the C(rateLimitExceeded) and
    C(userRateLimitExceeded) reasons, with capped, jittered exponential backoff that honours
    C(Retry-After); every retry of a mutating call carries the same C(requestId), so the API applies
    it at most once.
  - An operation that finishes C(DONE) with an C(error) (for example C(ZONE_RESOURCE_POOL_EXHAUSTED) or
    C(QUOTA_EXCEEDED)) fails the task with that reason.
"""
