"""The fixed world every emulated project sees: regions, zones and machine types (real names/sizes)."""
from __future__ import annotations

import zlib

REGION_ZONES = {
    "us-central1": ["a", "b", "c", "f"],
    "us-east1": ["b", "c", "d"],
    "us-west1": ["a", "b", "c"],
    "europe-west1": ["b", "c", "d"],
    "europe-west4": ["a", "b", "c"],
    "asia-east1": ["a", "b", "c"],
    "asia-northeast1": ["a", "b", "c"],
    "australia-southeast1": ["a", "b", "c"],
}
ZONES = {f"{region}-{suffix}": region for region, suffixes in REGION_ZONES.items() for suffix in suffixes}
REGIONS = list(REGION_ZONES)

# name -> (guestCpus, memoryMb, isSharedCpu) as published by GCE.
MACHINE_TYPES = {
    "e2-micro": (2, 1024, True),
    "e2-small": (2, 2048, True),
    "e2-medium": (2, 4096, True),
    "e2-standard-2": (2, 8192, False),
    "e2-standard-4": (4, 16384, False),
    "e2-standard-8": (8, 32768, False),
    "e2-standard-16": (16, 65536, False),
    "n2-standard-2": (2, 8192, False),
    "n2-standard-4": (4, 16384, False),
    "n2-standard-8": (8, 32768, False),
    "n2-standard-16": (16, 65536, False),
    "n2-standard-32": (32, 131072, False),
}

CREATION_TIMESTAMP = "1969-12-31T16:00:00.000-08:00"  # what GCE reports for built-in zones/regions/types


def stable_id(*parts: str) -> str:
    """A deterministic uint64-looking id (GCE ids are decimal strings)."""
    text = "/".join(parts)
    return str((zlib.crc32(text.encode()) << 32) | zlib.adler32(text.encode()))


def zone_resource(base: str, project: str, zone: str) -> dict:
    return {
        "kind": "compute#zone",
        "id": stable_id("zone", zone),
        "creationTimestamp": CREATION_TIMESTAMP,
        "name": zone,
        "description": zone,
        "status": "UP",
        "region": f"{base}projects/{project}/regions/{ZONES[zone]}",
        "selfLink": f"{base}projects/{project}/zones/{zone}",
        "availableCpuPlatforms": ["Intel Cascade Lake", "Intel Ice Lake", "AMD Rome", "AMD Milan"],
        "supportsPzs": False,
    }


def region_resource(base: str, project: str, region: str) -> dict:
    return {
        "kind": "compute#region",
        "id": stable_id("region", region),
        "creationTimestamp": CREATION_TIMESTAMP,
        "name": region,
        "description": region,
        "status": "UP",
        "zones": [f"{base}projects/{project}/zones/{region}-{s}" for s in REGION_ZONES[region]],
        "quotas": [
            {"metric": "CPUS", "limit": 2400.0, "usage": 0.0},
            {"metric": "INSTANCES", "limit": 6000.0, "usage": 0.0},
        ],
        "selfLink": f"{base}projects/{project}/regions/{region}",
        "supportsPzs": False,
    }


def machine_type_resource(base: str, project: str, zone: str, name: str) -> dict:
    cpus, memory_mb, shared = MACHINE_TYPES[name]
    description = f"{cpus} vCPUs, {memory_mb // 1024} GB RAM"
    if shared:
        description = f"Efficient Instance, {cpus} vCPU (1/4 shared physical core) and {memory_mb // 1024} GB RAM"
    return {
        "kind": "compute#machineType",
        "id": stable_id("machineType", name),
        "creationTimestamp": CREATION_TIMESTAMP,
        "name": name,
        "description": description,
        "guestCpus": cpus,
        "memoryMb": memory_mb,
        "imageSpaceGb": 0,
        "maximumPersistentDisks": 128,
        "maximumPersistentDisksSizeGb": "263168",
        "zone": zone,
        "selfLink": f"{base}projects/{project}/zones/{zone}/machineTypes/{name}",
        "isSharedCpu": shared,
        "architecture": "X86_64",
    }
