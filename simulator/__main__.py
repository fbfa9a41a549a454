"""Command line: ``python -m simulator --fleet FILE [options]``."""

from __future__ import annotations

import signal
import sys


def _exit_cleanly(signum, frame):  # installed before the heavy imports: an early SIGTERM still exits 0
    raise SystemExit(0)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)

import argparse  # noqa: E402
import asyncio  # noqa: E402
import logging  # noqa: E402

from simulator.auth import DEFAULT_LIFETIME  # noqa: E402
from simulator.core import Simulator, SimulatorSettings  # noqa: E402
from simulator.emails import SmtpSender  # noqa: E402
from simulator.fleet_file import FleetFileError, load_fleet_file  # noqa: E402
from simulator.generator import generate_fleet  # noqa: E402
from simulator.server import serve  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--fleet", help="fleet YAML file (e.g. simulator/fleets/demo.yaml)")
    src.add_argument("--generate", type=int, metavar="N", help="use a generated fleet of N servers instead")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8899, help="0 picks a free port")
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="wall seconds per simulated second (0.01: a 30-minute patch takes 18 s)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--state-file", help="persist state here (survives restarts, kill -9 included)")
    p.add_argument("--smtp", metavar="HOST:PORT", help="also deliver e-mails over plain SMTP")
    p.add_argument("--token-lifetime", type=int, default=DEFAULT_LIFETIME, help="simulated seconds")
    p.add_argument("--access-log", action="store_true")
    args = p.parse_args(argv)
    if args.time_scale <= 0:
        p.error("--time-scale must be > 0")
    if args.token_lifetime <= 0:
        p.error("--token-lifetime must be > 0")
    if args.generate is not None and args.generate < 1:
        p.error("--generate must be >= 1")
    if args.smtp:
        host, _, port = args.smtp.rpartition(":")
        if not host or not port.isdigit():
            p.error("--smtp must look like HOST:PORT")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        fleet = (
            generate_fleet(args.generate, args.seed)
            if args.generate
            else load_fleet_file(args.fleet, args.seed)
        )
    except FleetFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = SimulatorSettings(
        seed=args.seed,
        time_scale=args.time_scale,
        token_lifetime=args.token_lifetime,
        state_file=args.state_file,
    )
    sender = None
    try:
        sim = Simulator(fleet, settings)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.smtp:
        host, _, port = args.smtp.rpartition(":")
        sender = SmtpSender(host, int(port), on_result=sim.smtp_result)
        sim.mailer = sender.send
    try:
        asyncio.run(serve(sim, args.host, args.port, args.access_log))
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    finally:
        if sender is not None:
            sender.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
