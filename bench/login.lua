-- wrk script for bench/login_load.sh: POSTs one login and counts the answers by kind.
--
--   wrk ... -s bench/login.lua http://127.0.0.1:3100/api/auth/login -- <email> <password> [spread]
--
-- With "spread", every request carries its own X-Forwarded-For address, so a showcase that
-- trusts 127.0.0.1 as a proxy (TRUSTED_PROXIES=127.0.0.1) sees each login as a different client
-- and its 10/60s per-IP login limit never applies: every request is hashed.

local threads = {}
local counter = 0

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   local email = args[1] or "bench@example.com"
   local password = args[2] or "bench-password-123"
   spread = args[3] == "spread"
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.body = string.format('{"email":"%s","password":"%s"}', email, password)
   hashed_ok, wrong, limited, other = 0, 0, 0, 0
end

function request()
   if not spread then
      return wrk.format()
   end
   counter = counter + 1
   local ip = string.format("10.%d.%d.%d", id % 256, math.floor(counter / 256) % 256, counter % 256)
   -- wrk.format does not merge these with wrk.headers, so the content type is repeated.
   return wrk.format(nil, nil, {
      ["Content-Type"] = "application/json",
      ["X-Forwarded-For"] = ip,
   })
end

function response(status, headers, body)
   if status == 200 then
      hashed_ok = hashed_ok + 1
   elseif status == 401 then
      wrong = wrong + 1
   elseif status == 429 then
      limited = limited + 1
   else
      other = other + 1
   end
end

function done(summary, latency, requests)
   local ok, unauthorized, refused, rest = 0, 0, 0, 0
   for _, thread in ipairs(threads) do
      ok = ok + thread:get("hashed_ok")
      unauthorized = unauthorized + thread:get("wrong")
      refused = refused + thread:get("limited")
      rest = rest + thread:get("other")
   end
   local total = ok + unauthorized + refused + rest
   io.write(string.format("LOGIN_COUNTS total=%d ok=%d unauthorized=%d rate_limited=%d other=%d\n",
      total, ok, unauthorized, refused, rest))
end
