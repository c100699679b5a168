-- orders.lua: wrk script that POSTs orders of quantity 1 to sales' POST /orders.
--
--   wrk ... -s orders.lua http://127.0.0.1:PORT/orders -- random [N]   one of bench-000..N-1
--   wrk ... -s orders.lua http://127.0.0.1:PORT/orders -- hot           always bench-hot
--
-- The requests are built once per thread; request() only picks one. done() prints one
-- line that tests/bench/bench.sh parses:
--   BENCH requests=... duration_s=... rps=... p50_ms=... p90_ms=... p99_ms=... max_ms=...
--         non2xx=... connect=... read=... write=... timeout=...
-- non2xx is wrk's count of responses with a status of 400 or more (the sales API sends no
-- 1xx or 3xx, so that is every answer other than 2xx).

local prepared = {}
local nthreads = 0

-- Runs in the main Lua state once per thread: gives each thread its own number, so that
-- the threads do not draw the same random sequence.
function setup(thread)
    nthreads = nthreads + 1
    thread:set("thread_no", nthreads)
end

local function order_request(sku)
    local body = string.format('{"sku":"%s","quantity":1}', sku)
    -- wrk.init() has set wrk.headers["Host"] (host:port) before it calls init().
    return wrk.format("POST", wrk.path, { ["Content-Type"] = "application/json",
                                           ["Host"] = wrk.headers["Host"] }, body)
end

function init(args)
    local mode = args[1] or "random"
    if mode == "hot" then
        prepared[1] = order_request("bench-hot")
    elseif mode == "random" then
        local n = tonumber(args[2] or "100")
        if n == nil or n < 1 or n > 1000 or n ~= math.floor(n) then
            error("orders.lua: the SKU count must be an integer in 1..1000")
        end
        for i = 0, n - 1 do
            prepared[#prepared + 1] = order_request(string.format("bench-%03d", i))
        end
    else
        error("orders.lua: mode must be random or hot, not " .. tostring(mode))
    end
    math.randomseed(os.time() * 100 + (thread_no or 0))
end

function request()
    return prepared[math.random(#prepared)]
end

function done(summary, latency, requests)
    local e = summary.errors
    local secs = summary.duration / 1e6
    io.write(string.format(
        "BENCH requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f " ..
        "max_ms=%.3f non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
        summary.requests, secs, summary.requests / secs,
        latency:percentile(50) / 1000, latency:percentile(90) / 1000,
        latency:percentile(99) / 1000, latency.max / 1000,
        e.status, e.connect, e.read, e.write, e.timeout))
end
