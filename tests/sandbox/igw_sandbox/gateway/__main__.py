"""Run the simulated GKE gateway until SIGTERM.

    python -m igw_sandbox.gateway --kubeconfig KUBECONFIG --address 127.0.10.1 \\
        [--programming-delay 2|LOW:HIGH] [--programming-delay-seed 1] --state-dir .sandbox/NAME \\
        [--poll-interval 0.25] [--model-latency 0.005]

Creates STATE_DIR/gateway.ready once the first poll has programmed the data plane
and removes it on exit.
"""

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from urllib.parse import urlsplit

import yaml

from ..build import epp_binary, epp_relay
from ..modelserver import ModelServerFleet
from ..netns import Namespace, PodNetwork, Relay
from .controller import Controller, KubeClient, WatchedLists
from .dataplane import DataPlane, is_loopback
from .delay import DEFAULT_SEED, ProgrammingDelay
from .epp_relay import EppRelay
from .epps import EppRunner
from .snapshot import KEYS

READY_FILE = "gateway.ready"


def _delay(text):
    try:
        return ProgrammingDelay.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m igw_sandbox.gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True, help="admin kubeconfig of the sandbox")
    parser.add_argument("--address", required=True, help="the sandbox's loopback address: its oldest Gateway listens there, "
                        "the others on the next free hosts of its /24")
    parser.add_argument("--programming-delay", type=_delay, default=ProgrammingDelay.parse(2.0),
                        metavar="SECONDS|LOW:HIGH",
                        help="seconds before a configuration change reaches the data plane (default 2); "
                             "LOW:HIGH draws each change's delay uniformly between the bounds")
    parser.add_argument("--programming-delay-seed", type=int, default=DEFAULT_SEED,
                        help=f"seed of the per-change delays of LOW:HIGH (default {DEFAULT_SEED})")
    parser.add_argument("--state-dir", required=True, type=Path, help="where gateway.ready is written")
    parser.add_argument("--poll-interval", type=float, default=0.25,
                        help="seconds between two looks at what the API server holds (kept current by watches)")
    parser.add_argument("--model-latency", type=float, default=0.005,
                        help="seconds each simulated model server takes per completion (default 0.005)")
    args = parser.parse_args(argv)
    if not is_loopback(args.address):
        parser.error(f"--address {args.address} is not a loopback address")
    return args


def _api_server(kubeconfig):
    """((host, port), base64 CA bundle) of the API server the kubeconfig's current context names."""
    config = yaml.safe_load(Path(kubeconfig).read_text())
    context = next(c["context"] for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    server = urlsplit(cluster["server"])
    return (server.hostname, server.port), cluster["certificate-authority-data"]


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    api_address, ca_data = _api_server(args.kubeconfig)
    # From here on this process, and every thread it starts, lives in the sandbox's pod network;
    # the listeners are made in the host's namespace, and the API server is relayed in on loopback.
    host = Namespace.current()
    pod_network = PodNetwork(args.state_dir)
    pod_network.create()
    pod_network.pods.enter()
    api_relay = Relay(pod_network.pods, host, api_address)
    relay = EppRelay(epp_relay(), args.state_dir / "epp-relay.sock", args.state_dir / "logs" / "epp-relay.log")
    kube = KubeClient(args.kubeconfig)
    fleet = ModelServerFleet(args.model_latency, pod_network)
    epps = EppRunner(kube, pod_network, host, args.state_dir, api_address, ca_data, epp_binary)
    dataplane = DataPlane(fleet, listen_namespace=host, epps=epps, relay_socket=relay.socket_path)
    controller = Controller(kube, WatchedLists(kube, KEYS, stop, args.poll_interval), dataplane,
                            args.programming_delay.drawer(args.programming_delay_seed), args.address,
                            pods=(fleet, epps))
    ready = args.state_dir / READY_FILE

    def mark_ready():
        args.state_dir.mkdir(parents=True, exist_ok=True)
        ready.write_text(json.dumps({"pid": os.getpid(), "address": args.address,
                                     "programming_delay": args.programming_delay.spec, "since": time.time()}) + "\n")
        logging.getLogger("igw_sandbox.gateway").info("ready: %s", ready)

    try:
        controller.run(stop, args.poll_interval, mark_ready)
    finally:
        ready.unlink(missing_ok=True)
        dataplane.close()
        relay.close()
        epps.close()
        fleet.close()
        api_relay.close()
        pod_network.delete()


if __name__ == "__main__":
    main()
    # Every listener is closed by now. Tearing down the kubernetes client's many modules
    # takes seconds on a busy machine; skip it so that SIGTERM ends the process promptly.
    logging.shutdown()
    sys.stdout.flush()
    os._exit(0)
