-- wrk script for bench/soak.sh: every wrk thread cycles its connections through a mix of
-- requests that takes each kind of answer the showcase gives (200 reads and a stored write, 204,
-- 400, 404, 405, 415, an authenticated read), and the answers are counted by status.
--
--   wrk ... -s bench/soak.lua http://127.0.0.1:3100 -- <bearer token>

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

local json = { ["Content-Type"] = "application/json" }

function init(args)
   local token = args[1] or ""
   counts = {}
   sent = 0
   mix = {
      wrk.format("GET", "/api/hello"),
      wrk.format("GET", "/api/posts?page=1&limit=10"),
      wrk.format("GET", "/api/docs/api/users"),
      wrk.format("GET", "/api/no/such/route"),
      wrk.format("POST", "/api/contact", json,
         '{"name":"Soak","email":"soak@example.com","message":"still here"}'),
      wrk.format("POST", "/api/contact", json, '{"name": "Soak", "email": '),
      wrk.format("POST", "/api/contact", { ["Content-Type"] = "text/plain" }, "hello"),
      wrk.format("DELETE", "/api/hello"),
      wrk.format("OPTIONS", "/api/posts"),
      wrk.format("GET", "/api/auth/me", { ["Authorization"] = "Bearer " .. token }),
      wrk.format("GET", "/api/hello", { ["X-Request-Id"] = "soak-request", ["X-Waypost-User"] = "admin" }),
   }
end

function request()
   sent = sent + 1
   return mix[(sent % #mix) + 1]
end

function response(status, headers, body)
   counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
   local total = {}
   for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("counts")) do
         total[status] = (total[status] or 0) + n
      end
   end
   local line = "SOAK_STATUSES"
   for status = 100, 599 do
      if total[status] then line = line .. string.format(" %d=%d", status, total[status]) end
   end
   io.write(line .. "\n")
end
