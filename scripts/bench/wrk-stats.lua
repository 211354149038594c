-- wrk-stats.lua: no request logic, only a machine-readable summary line
-- (wrk's own report rounds and mixes units). Used by the small scenario;
-- defining no request() keeps wrk on its fast pre-built request path.
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "WRK requests=%d bytes=%d secs=%.3f p50_us=%d p99_us=%d max_us=%d errors=%d status_errors=%d timeouts=%d\n",
      summary.requests, summary.bytes, summary.duration / 1e6,
      latency:percentile(50), latency:percentile(99), latency.max,
      e.connect + e.read + e.write + e.timeout, e.status, e.timeout))
end
