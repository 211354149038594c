-- wrk-zipf.lua: GET /mix/NNNN.bin with Zipf(s) popularity over N objects.
-- Object i (0-based) has rank i+1 and weight 1/(i+1)^s. Usage:
--   wrk ... -s wrk-zipf.lua http://host:port -- N S SEED
-- Picking is O(1): init() quantizes the inverse CDF into SLOTS entries, and
-- request() draws a slot. Ends with the same WRK summary line as
-- wrk-stats.lua.
local SLOTS = 131072
local pick = {}
local nthreads = 0

function setup(thread)
   nthreads = nthreads + 1
   thread:set("thread_no", nthreads)
end

function init(args)
   local n = tonumber(args[1]) or 1000
   local s = tonumber(args[2]) or 0.8
   local seed = tonumber(args[3]) or 1
   local weights, total = {}, 0
   for i = 1, n do
      weights[i] = 1 / i ^ s
      total = total + weights[i]
   end
   local paths = {}
   for i = 1, n do
      paths[i] = wrk.format("GET", string.format("/mix/%04d.bin", i - 1))
   end
   -- slot k serves the object whose CDF interval holds (k + 0.5) / SLOTS
   local i, cum = 1, weights[1] / total
   for k = 0, SLOTS - 1 do
      local u = (k + 0.5) / SLOTS
      while cum < u and i < n do
         i = i + 1
         cum = cum + weights[i] / total
      end
      pick[k + 1] = paths[i]
   end
   -- each wrk thread gets its own stream, reproducible from SEED
   math.randomseed(seed * 1000003 + (thread_no or 0))
end

function request()
   return pick[math.random(SLOTS)]
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "WRK requests=%d bytes=%d secs=%.3f p50_us=%d p99_us=%d max_us=%d errors=%d status_errors=%d timeouts=%d\n",
      summary.requests, summary.bytes, summary.duration / 1e6,
      latency:percentile(50), latency:percentile(99), latency.max,
      e.connect + e.read + e.write + e.timeout, e.status, e.timeout))
end
