-- POST one JSON body on every request and print a machine-readable summary at the end.
--
-- Environment (set by bench/load.py):
--   BENCH_BODY_FILE      path of the request body (a file, so large chat bodies fit)
--   BENCH_AUTHORIZATION  value of the Authorization header, or empty for none
--
-- The summary is one line, `BENCH_RESULT {json}`, with latencies in microseconds.

local body_file = os.getenv("BENCH_BODY_FILE")
local authorization = os.getenv("BENCH_AUTHORIZATION")

local f = assert(io.open(body_file, "rb"), "cannot open BENCH_BODY_FILE")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
if authorization and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout
  ))
end
