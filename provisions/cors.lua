-- cors.lua: CORS, so that a web app served from another origin can call the mock.
--
-- app.cors("http://localhost:3000") in registerRules() does this in one
-- line (README, "CORS"); this file does it by hand, for full control, and
-- shows that headers a provision sets itself win over h1mock's.
--
-- What it shows:
--   * app.after_request(fn(resp) -> resp): one hook adds headers to every
--     answer, including 404s and the OPTIONS answers h1mock makes itself;
--   * preflights need no rule: h1mock answers OPTIONS with an Allow header
--     listing the methods of that path, and the hook turns that into
--     Access-Control-Allow-Methods;
--   * an allow-list of origins, echoed back (needed with credentials, where
--     "*" is not accepted); other origins get no CORS headers, so the
--     browser blocks them, as a real service configured this way would.
--
-- Try it:
--   curl -i localhost:8000/api/items -H 'Origin: http://localhost:3000'
--   curl -i -X OPTIONS localhost:8000/api/items/1 -H 'Origin: http://localhost:3000' \
--        -H 'Access-Control-Request-Method: DELETE' \
--        -H 'Access-Control-Request-Headers: content-type, authorization'
--   curl -i localhost:8000/api/items -H 'Origin: https://evil.example'   # no CORS headers

local ALLOWED_ORIGINS = {
  ["http://localhost:3000"] = true,
  ["https://app.example.com"] = true,
}

local function cors(resp)
  resp.headers:add("Vary", "Origin")   -- caches must not mix answers for two origins
  local origin = request.headers.origin
  if not ALLOWED_ORIGINS[origin] then return resp end
  local h = resp.headers
  h["Access-Control-Allow-Origin"] = origin
  h["Access-Control-Allow-Credentials"] = "true"
  if request.method == "OPTIONS" and request.headers["access-control-request-method"] then
    h["Access-Control-Allow-Methods"] = h.Allow
    h["Access-Control-Allow-Headers"] = request.headers["access-control-request-headers"]
    h["Access-Control-Max-Age"] = 600
  else
    h["Access-Control-Expose-Headers"] = "Location, X-Total-Count"
  end
  return resp
end

local function items(req)
  if req.method == "POST" then
    return {id = 2, name = (req.json or {}).name}, 201, {Location = "/api/items/2"}
  end
  return {{id = 1, name = "pen"}}, {["X-Total-Count"] = 1}
end

local function item(req, id)
  if req.method == "DELETE" then return "", 204 end
  return {id = id, name = (req.json or {}).name}
end

function registerRules()
  app.after_request(cors)
  app.route("/api/items", {methods = {"GET", "POST"}}, items)
  app.route("/api/items/<int:id>", {methods = {"PUT", "DELETE"}}, item)
end
