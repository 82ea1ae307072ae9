-- foo-bar: the smallest useful provision, Flask style.
--
-- What it shows:
--   * registerRules() is called once after the file runs; it registers URL
--     rules with app.add_url_rule(rule, endpoint, view_func, methods).
--   * The same rule can have one view per method (GET and POST here); any
--     other method on /app/v1/foo/bar gets 405 with an Allow header.
--   * A view returning a Lua table answers JSON (compact, sorted keys,
--     application/json), status 200:
--       GET /app/v1/foo/bar -> {"resultCode":0,"resultData":"answering a get"}
--   * A view may return body, status, headers; `request` is the request
--     being served (here its path builds a Location header).
--
-- Copy it as initial.lua into the provisions directory to serve it at start,
-- or POST it to the admin API: POST /app/v1/provision/foo-bar.
-- It is also what tests/bench serves.
--
-- Try it:
--   curl localhost:8000/app/v1/foo/bar            # {"resultCode":0,"resultData":"answering a get"}
--   curl -i -X POST localhost:8000/app/v1/foo/bar # 200, x-version and location headers
--   curl -i -X PUT localhost:8000/app/v1/foo/bar  # 405, Allow: GET, HEAD, OPTIONS, POST

function registerRules()
  app.add_url_rule("/app/v1/foo/bar", "answer_get", answer_get, {"GET"})
  app.add_url_rule("/app/v1/foo/bar", "answer_post", answer_post, {"POST"})
end

function answer_get()
  return {resultCode = 0, resultData = "answering a get"}
end

function answer_post()
  local location = request.path .. "/" .. math.random(10000, 20000)
  return {resultCode = 0, resultData = "answering a post"}, 200,
         {["x-version"] = "1.1.0", location = location}
end
