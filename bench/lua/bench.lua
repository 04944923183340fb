-- One wrk script for every scenario; the harness chooses with the script's arguments:
--
--   wrk ... -s bench.lua URL -- MODE PREFIX FIRST COUNT [BODY] [EXTRA]
--
--   get            GET PREFIX..FIRST                 (COUNT ignored)
--   revalidate     GET PREFIX..FIRST, If-None-Match: EXTRA
--   path           GET PREFIX as is                  (a list page)
--   patch          PATCH PREFIX..id with BODY, id cycling over FIRST .. FIRST+COUNT-1
--   patch_if_match the same with If-Match: the row's current ETag. EXTRA is a Lua file
--                  returning {[id] = etag}; every response's ETag header replaces the
--                  tag of the id found in its body, so the next write of that row
--                  carries the tag the server just gave it.
--   patch_if_match_keyed
--                  the same with a new Idempotency-Key on every request: the sf-string
--                  "RUN-n", RUN a token the harness makes afresh for each wrk run (after
--                  BODY and EXTRA) and n this run's request count, so that no key is
--                  ever sent twice; answers marked Idempotent-Replayed are counted.
--
-- done() prints one line "BENCH_RESULT {json}" that the harness reads.

local mode, prefix, first, count, body, extra, run
local etags = {}
local cycle = 0
local fixed = nil
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

local function headers_with(name, value, name2, value2)
  local h = {["Content-Type"] = "application/json"}
  if name then h[name] = value end
  if name2 then h[name2] = value2 end
  return h
end

function init(args)
  mode, prefix = args[1], args[2]
  first, count = tonumber(args[3]) or 0, tonumber(args[4]) or 1
  body, extra, run = args[5], args[6], args[7]
  c412 = 0
  replays = 0
  if mode == "get" then
    fixed = wrk.format("GET", prefix .. first, headers_with())
  elseif mode == "revalidate" then
    fixed = wrk.format("GET", prefix .. first, headers_with("If-None-Match", extra))
  elseif mode == "path" then
    fixed = wrk.format("GET", prefix, headers_with())
  elseif mode == "patch_if_match" or mode == "patch_if_match_keyed" then
    etags = dofile(extra)
    response = function(status, headers, text)
      if status == 412 then c412 = c412 + 1 end
      if headers["Idempotent-Replayed"] or headers["idempotent-replayed"] then
        replays = replays + 1
      end
      local tag = headers["ETag"] or headers["etag"]
      local id = text and string.match(text, '"id"%s*:%s*"?(%d+)')
      if tag and id then etags[tonumber(id)] = tag end
    end
  end
end

function request()
  if fixed then return fixed end
  local id = first + cycle % count
  cycle = cycle + 1
  if mode == "patch_if_match" then
    return wrk.format("PATCH", prefix .. id, headers_with("If-Match", etags[id]), body)
  elseif mode == "patch_if_match_keyed" then
    local key = '"' .. run .. "-" .. cycle .. '"'
    local h = headers_with("If-Match", etags[id], "Idempotency-Key", key)
    return wrk.format("PATCH", prefix .. id, h, body)
  end
  return wrk.format("PATCH", prefix .. id, headers_with(), body)
end

function done(summary, latency, requests)
  local refused, replayed = 0, 0
  for _, thread in ipairs(threads) do
    refused = refused + (thread:get("c412") or 0)
    replayed = replayed + (thread:get("replays") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"precondition_failed": %d, "replayed": %d, "latency_mean_us": %.1f, ' ..
    '"latency_p50_us": %d, "latency_p99_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    refused, replayed, latency.mean, latency:percentile(50), latency:percentile(99)))
end
