"""A faithful, framework-free simulator of the retired CenturyLink Cloud (CLC) API v2.

It serves the compute API (`/v2/...`), the Patching-as-a-Service endpoints
(`/patching/rest/...`) and an admin API (`/_sim/...`) from one HTTP server, so that
clients written against the real cloud run unchanged given only a different base URL.

Layout (moto-style): pure model modules (``clock``, ``oscatalog``, ``fleet_file``,
``generator``, ``entities``, ``jobs``, ``executions``, ``emails``, ``faults``, ``auth``,
``persistence``, ``core``) and a thin HTTP layer (``api_v2``, ``patching``, ``admin``,
``http_common``, ``app``, ``server``).
"""

from simulator.core import Simulator, SimulatorSettings
from simulator.fleet_file import FleetFileError, load_fleet_file

__all__ = ["FleetFileError", "Simulator", "SimulatorSettings", "load_fleet_file"]
