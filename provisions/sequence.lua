-- sequence.lua: answering differently on the Nth call.
--
-- What it shows:
--   * journal.count{...}: how many requests the journal holds that match a
--     filter. The request being served is recorded after its answer, so
--     count + 1 is the number of this call:
--       /flaky          503 twice, then 200: exercises a client's retries;
--       /jobs/<id>      "queued", "running", then "done", counted per id;
--   * a counter kept in the store: /tickets hands out 1, 2, 3, ...
--
-- Which one to use:
--   * the journal needs no code to keep state and is reset for every test with
--     DELETE /app/v1/requests on the admin port; it counts what it holds
--     (--journal-size, default 10000; a disabled journal counts nothing),
--     and calls in flight at the same moment see the same count;
--   * a store counter counts exactly what the view decides, with no gap
--     between concurrent calls; it survives provision swaps (and restarts,
--     with --data-dir). Reset it with DELETE /app/v1/store/counters, or
--     start it elsewhere:
--       curl -X POST localhost:8074/app/v1/store/counters -d '[{"_id":"tickets","value":100}]'
--
-- Try it:
--   curl -i localhost:8000/flaky     # 503, 503, then 200
--   curl localhost:8000/jobs/7       # queued, running, done, done, ...
--   curl -X POST localhost:8000/tickets
--   curl -X DELETE localhost:8074/app/v1/requests   # /flaky and /jobs start over

local JOB_STATES = {"queued", "running", "done"}

function flaky()
  local call = journal.count{endpoint = "flaky"} + 1
  if call <= 2 then
    return {error = "temporarily unavailable", call = call}, 503, {["Retry-After"] = 1}
  end
  return {ok = true, call = call}
end

function job(req, id)
  local call = journal.count{endpoint = "job", path = req.path} + 1
  return {id = id, state = JOB_STATES[math.min(call, #JOB_STATES)], call = call}
end

-- store.get and store.put run without a yield in between, so no other
-- request can slip in and take the same number.
local function next_value(name)
  local counter = store.get("counters", name) or {value = 0}
  counter.value = counter.value + 1
  store.put("counters", name, counter)
  return counter.value
end

function ticket()
  local n = next_value("tickets")
  return {ticket = n}, 201, {Location = "/tickets/" .. n}
end

function registerRules()
  app.add_url_rule("/flaky", "flaky", flaky)
  app.add_url_rule("/jobs/<id>", "job", job)
  app.add_url_rule("/tickets", "ticket", ticket, {"POST"})
end
