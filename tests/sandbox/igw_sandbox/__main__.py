"""python -m igw_sandbox up|down|status|seed|reset|restart-apiserver [--name NAME] ..."""

import argparse
import sys

from . import versions
from .cluster import DEFAULT_NAME, Sandbox
from .gateway.delay import ProgrammingDelay
from .scenarios import available
from .waits import SandboxError


def _delay(text):
    try:
        return ProgrammingDelay.parse(text).spec
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _parser():
    parser = argparse.ArgumentParser(prog="python -m igw_sandbox",
                                     description="A loopback Kubernetes sandbox dressed as a GKE cluster.")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name, help_text):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--name", default=DEFAULT_NAME, help=f"sandbox name (default: {DEFAULT_NAME})")
        return sub

    up = command("up", "start the sandbox in the background (does nothing if it is up and healthy)")
    up.add_argument("--flavour", choices=sorted(versions.GKE_FLAVOURS),
                    help=f"GKE version presented (default: {versions.DEFAULT_FLAVOUR}; "
                         + ", ".join(f"{k}={v}" for k, v in versions.GKE_FLAVOURS.items()) + ")")
    up.add_argument("--programming-delay", type=_delay, metavar="SECONDS|LOW:HIGH",
                    help="how long the simulated gateway takes to program a change (default: 2.0); "
                         "LOW:HIGH draws each change's delay uniformly between the bounds (e.g. 2:8)")
    seed = command("seed", "apply a scenario")
    seed.add_argument("scenario", help="one of: " + ", ".join(available())
                      + ", pools-N (alpha-basic's preview stack N times, e.g. pools-20)")
    command("down", "stop every process of the sandbox")
    command("status", "show components, pids, ports and listening sockets")
    command("reset", "remove everything added since up (helm releases, namespaces, objects, CRDs)")
    restart = command("restart-apiserver", "stop kube-apiserver, wait, and start it again on the same port with "
                                           "the same certificates and etcd data (the rest keeps running)")
    restart.add_argument("--down-seconds", type=float, default=20.0,
                         help="seconds from the stop to the start again (default: 20)")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    sandbox = Sandbox(args.name, getattr(args, "flavour", None), getattr(args, "programming_delay", None))
    try:
        if args.command == "up":
            sandbox.up()
            print(sandbox.layout.env_file.read_text(), end="")
        elif args.command == "seed":
            sandbox.seed(args.scenario)
        elif args.command == "down":
            sandbox.down()
        elif args.command == "reset":
            sandbox.reset()
        elif args.command == "restart-apiserver":
            sandbox.restart_apiserver(args.down_seconds)
        elif args.command == "status":
            print(sandbox.status())
            return 0 if sandbox.healthy() else 1
    except SandboxError as error:
        print(f"sandbox {args.name}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
