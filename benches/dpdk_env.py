"""What the benchmark scripts need to know about the installed DPDK."""

import functools
import subprocess


@functools.lru_cache(maxsize=None)
def bond_member_devarg():
    """net_bonding's member devarg: `slave` on DPDK 22.11, `member` from 23.11."""
    try:
        v = subprocess.run(["pkg-config", "--modversion", "libdpdk"], capture_output=True,
                           text=True).stdout.strip()
        return "member" if tuple(int(x) for x in v.split(".")[:2]) >= (23, 11) else "slave"
    except (OSError, ValueError):
        return "slave"
