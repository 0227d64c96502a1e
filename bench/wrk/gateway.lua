-- wrk driver for the Athena gateway benchmark.
--
-- Usage: wrk ... http://127.0.0.1:PORT -s gateway.lua -- <scenario>
--   scenario: fetch_user | fetch_pk | insert | query | health | fetch_cached
-- Every request carries the API key read from ATHENA_BENCH_KEY. The fetch scenarios that measure
-- the database path send `Cache-Control: no-cache`, so the gateway's cache stays out of them;
-- fetch_cached sends the same requests over 100 ids without it, so they are answered from the
-- cache after the first of each.
--
-- Every request gets a fresh random user_id / id. Responses whose status is
-- not 200 are counted per thread and reported by done(), together with the
-- rate and latency percentiles, on one machine-readable line:
--   BENCH_RESULT requests=N duration_us=N rps=X p50_us=N p99_us=N
--                non200=N socket_errors=N statuses=CODE:N,...

local ROWS = 100000
local USERS = 10000

local threads = {}
local thread_count = 0

function setup(thread)
   thread_count = thread_count + 1
   -- becomes the global `bench_thread` inside that thread's Lua state
   thread:set("bench_thread", thread_count)
   table.insert(threads, thread)
end

-- per-thread state (each thread has its own Lua state)
local scenario
local base_headers
local uncached_headers

local function fail(msg)
   io.stderr:write("gateway.lua: " .. msg .. "\n")
   os.exit(2)
end

function init(args)
   scenario = args[1]
   if scenario == nil then
      fail("missing scenario argument")
   end
   local seed = os.time() * 1000 + (bench_thread or 0) * 7919
   math.randomseed(seed)
   -- LuaJIT's generator needs a few draws before it looks random
   for _ = 1, 10 do math.random() end

   base_headers = {
      ["X-Athena-Client"] = "default",
      ["Content-Type"] = "application/json",
   }
   local key = os.getenv("ATHENA_BENCH_KEY")
   if key == nil or key == "" then
      fail("ATHENA_BENCH_KEY is not set")
   end
   base_headers["Authorization"] = "Bearer " .. key
   uncached_headers = {}
   for k, v in pairs(base_headers) do uncached_headers[k] = v end
   uncached_headers["Cache-Control"] = "no-cache"

   local known = { fetch_user = true, fetch_pk = true, insert = true, query = true, health = true,
                   fetch_cached = true }
   if not known[scenario] then
      fail("unknown scenario " .. tostring(scenario))
   end
end

-- Requests are built once per thread in init() and then replayed in turn, so the client spends
-- its CPU on sending, not on running Lua per request (pgbench draws its ids in C). Statuses are
-- counted by wrk itself (summary.errors.status); a Lua response() callback would make wrk hand
-- every response to Lua and slow the client down.
local PREBUILT = 20000
local prebuilt = {}
local next_request = 0

local function build()
   if scenario == "fetch_user" then
      local uid = math.random(1, USERS)
      return wrk.format("POST", "/gateway/fetch", uncached_headers,
         '{"table_name":"events","conditions":[{"eq_column":"user_id","eq_value":'
         .. uid .. '}],"limit":10}')
   elseif scenario == "fetch_pk" then
      local id = math.random(1, ROWS)
      return wrk.format("POST", "/gateway/fetch", uncached_headers,
         '{"table_name":"events","conditions":[{"eq_column":"id","eq_value":'
         .. id .. '}],"limit":1}')
   elseif scenario == "fetch_cached" then
      local id = math.random(1, 100)
      return wrk.format("POST", "/gateway/fetch", base_headers,
         '{"table_name":"events","conditions":[{"eq_column":"id","eq_value":'
         .. id .. '}],"limit":1}')
   elseif scenario == "insert" then
      local uid = math.random(1, USERS)
      return wrk.format("PUT", "/gateway/insert", base_headers,
         '{"table_name":"events","insert_body":{"user_id":' .. uid
         .. ',"kind":"bench","value":1.5}}')
   elseif scenario == "query" then
      local id = math.random(1, ROWS)
      return wrk.format("POST", "/gateway/query", base_headers,
         '{"query":"SELECT * FROM events WHERE id = $1","params":[' .. id .. ']}')
   else -- health
      return wrk.format("GET", "/health", base_headers)
   end
end

function request()
   if #prebuilt == 0 then
      for i = 1, PREBUILT do prebuilt[i] = build() end
   end
   next_request = next_request % PREBUILT + 1
   return prebuilt[next_request]
end

function done(summary, latency, requests)
   local e = summary.errors
   -- wrk counts responses with a status of 400 or more; the gateway answers 200 on success.
   local bad = e.status
   local sock = e.connect + e.read + e.write + e.timeout
   local secs = summary.duration / 1e6
   local rps = 0
   if secs > 0 then rps = summary.requests / secs end
   io.write(string.format(
      "BENCH_RESULT requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d max_us=%d non200=%d socket_errors=%d statuses=%s\n",
      summary.requests, summary.duration, rps,
      latency:percentile(50), latency:percentile(99), latency.max,
      bad, sock, "-"))
end
