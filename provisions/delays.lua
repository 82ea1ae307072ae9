-- delays.lua: slow answers, to test timeouts, retries and spinners.
--
-- What it shows:
--   * sleep(seconds) in a view: it suspends only this request; every other
--     request (sleeping or not) is served meanwhile, so one mock can be
--     slow on one path and fast on all others;
--   * the delay taken from the path, from the query string, or at random;
--   * sleep in a before_request hook: an X-Delay header slows down any rule.
-- Keep delays shorter than the client's timeout you want to test, plus a
-- margin; on SIGTERM h1mock waits for sleeping requests (30 s at most).
--
-- Try it:
--   time curl localhost:8000/delay/1500                  # 1.5 s, then {"delayed_ms":1500}
--   time curl 'localhost:8000/slow?seconds=0.25'         # 0.25 s (default 1, at most 10)
--   time curl localhost:8000/jitter                      # between 100 and 300 ms
--   time curl localhost:8000/delay/0 -H 'X-Delay: 0.5'   # 0.5 s from the hook

local MAX_SECONDS = 10

function registerRules()
  app.before_request(function()
    local extra = tonumber(request.headers["x-delay"])
    if extra and extra > 0 then sleep(math.min(extra, MAX_SECONDS)) end
  end)

  app.get("/delay/<int(max=10000):ms>", function(req, ms)
    sleep(ms / 1000)
    return {delayed_ms = ms}
  end)

  app.get("/slow", function(req)
    local seconds = tonumber(req.args.seconds) or 1
    if seconds < 0 then abort(400, "seconds must be >= 0") end
    seconds = math.min(seconds, MAX_SECONDS)
    sleep(seconds)
    return {slept = seconds}
  end)

  app.get("/jitter", function()
    local ms = math.random(100, 300)
    sleep(ms / 1000)
    return {delayed_ms = ms}
  end)
end
