-- pktgen-dpdk Lua script for the two-bond line-rate test (docs/benchmarks.md): the same
-- setup as bond.pkt, then a 10 s measurement printed as Mpps per port and in total.
-- Run: pktgen ... -- -T -P -m "[2:3].0,[4:5].1" -f benches/pktgen/bond.lua
package.path = package.path .. ";?.lua;test/?.lua;app/?.lua;"
require "Pktgen"

local seconds = 10
local size = 64

pktgen.stop("all")
pktgen.set_proto("all", "udp")
pktgen.set("all", "size", size)

local function side(port, src, dst, dmac)
  pktgen.range.dst_mac(port, "start", dmac)
  for _, f in ipairs({"start", "min", "max"}) do
    pktgen.range.src_ip(port, f, src)
    pktgen.range.dst_ip(port, f, dst)
  end
  pktgen.range.src_ip(port, "inc", "0.0.0.0")
  pktgen.range.dst_ip(port, "inc", "0.0.0.0")
  pktgen.range.src_port(port, "start", 1024)
  pktgen.range.src_port(port, "min", 1024)
  pktgen.range.src_port(port, "max", 2047)
  pktgen.range.src_port(port, "inc", 1)
  pktgen.range.dst_port(port, "start", 5001)
  pktgen.range.dst_port(port, "min", 5001)
  pktgen.range.dst_port(port, "max", 5008)
  pktgen.range.dst_port(port, "inc", 1)
  pktgen.range.pkt_size(port, "start", size)
  pktgen.range.pkt_size(port, "min", size)
  pktgen.range.pkt_size(port, "max", size)
  pktgen.range.pkt_size(port, "inc", 0)
end

side("0", "10.1.0.2", "10.2.0.2", "02:00:00:00:00:02")
side("1", "10.2.0.2", "10.1.0.2", "02:00:00:00:00:01")
pktgen.set_range("all", "on")

-- LACP first: DPDK's mode 4 sends LACPDUs only inside TX bursts, so trickle traffic (1%)
-- for 5 s while the bonds aggregate (aggregate wait 2 s), then full rate.
pktgen.set("all", "rate", 1)
pktgen.start("all")
pktgen.delay(5000)
pktgen.set("all", "rate", 100)
pktgen.delay(2000) -- warm-up
local r0 = pktgen.portStats("all", "port")
pktgen.delay(seconds * 1000)
local r1 = pktgen.portStats("all", "port")
pktgen.stop("all")

local total = 0
for p = 0, 1 do
  local rx = r1[p].ipackets - r0[p].ipackets
  local miss = r1[p].imissed - r0[p].imissed
  total = total + rx
  printf("port %d: %.3f Mpps received, %d missed\n", p, rx / seconds / 1e6, miss)
end
printf("total: %.3f Mpps received back through fastlag (%d-byte frames)\n", total / seconds / 1e6, size)
