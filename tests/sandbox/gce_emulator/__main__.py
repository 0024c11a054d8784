"""python -m gce_emulator --host 127.0.0.1 --port 8089 --state-dir build/gce-emulator [--no-containers]"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from .server import Emulator, make_server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gce_emulator", description="Local Compute Engine v1 emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--state-dir", default="build/gce-emulator")
    parser.add_argument("--no-containers", action="store_true", help="no Incus containers behind instances")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per status transition")
    parser.add_argument("--bridge-address", help="also listen here (the Incus bridge) for the metadata server")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    emulator = Emulator(args.state_dir, containers=not args.no_containers, latency=args.latency)
    servers = [make_server(emulator, args.host, args.port)]
    if args.bridge_address and args.bridge_address != args.host:
        try:
            servers.append(make_server(emulator, args.bridge_address, args.port))
        except OSError as exc:
            logging.warning("cannot listen on %s:%d: %s", args.bridge_address, args.port, exc)
    for srv in servers[1:]:
        threading.Thread(target=srv.serve_forever, daemon=True).start()

    def stop(_signum, _frame):
        threading.Thread(target=servers[0].shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.info("GCE emulator on http://%s:%d/compute/v1/ (containers=%s, state=%s)",
                 args.host, args.port, not args.no_containers, args.state_dir)
    try:
        servers[0].serve_forever()
    finally:
        for srv in servers:
            srv.server_close()
        emulator.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
