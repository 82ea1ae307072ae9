-- The built-in default provision: what h1mock serves when the provisions
-- directory has no "initial": the generic REST API under /api, GET /health,
-- a home page at /, and a short guide (404) for every other path.
--
-- With --default help (the Flask-based h1mock's behaviour without an
-- initial provision) every path gets the guide and nothing else: the C side
-- then loads `require("h1mock.default").serve("help")` instead of this file.
local M = {}

local guide = [[
<!doctype html>
<html lang=en>
<title>h1mock: no rule for this path</title>
<style>body{font-family:sans-serif;max-width:46em;margin:2em auto;padding:0 1em}
pre{background:#f4f4f4;padding:1em;overflow:auto}</style>
<h1>h1mock is running its built-in default</h1>
<p>There is no rule for <code>%s %s</code>.</p>
%s<p>%s comes from a <em>provision</em>:
a Lua file that registers URL rules the way Flask does.</p>
<pre>
function registerRules()
  app.add_url_rule("/app/v1/foo/bar", "answer_get", answer_get, {"GET"})
  app.add_url_rule("/users/&lt;int:id&gt;", "user", user, {methods = {"GET", "DELETE"}})
end

function answer_get()
  return {resultCode = 0, resultData = "answering a get"}   -- JSON, 200
end

function user(req, id)
  if req.method == "DELETE" then return "", 204 end
  return jsonify{id = id, name = req.args.name}
end
</pre>
<p>To serve it, either</p>
<ul>
<li>save it in the provisions directory (<code>--provisions DIR</code>, default
<code>./provisions</code>): a <code>.lua</code> file written there is served at once, and
<code>initial.lua</code> is the one served at start, or</li>
<li>POST it to the admin port (8074 by default):
<code>curl --data-binary @mine.lua http://HOST:8074/app/v1/provision/mine</code></li>
</ul>
<p>Check a file offline with <code>h1mock --check mine.lua</code>; <code>h1mock --help</code>
lists every option. In your own provision, <code>rest.mount("/api")</code> inside
<code>registerRules()</code> brings the REST API along; its data stays across swaps.</p>
]]

-- What the default serves besides the guide, one paragraph per mode.
local SERVED = {
  rest = [[
<p>Out of the box h1mock serves a generic REST API: <code>POST /api/&lt;resource&gt;</code>
with a JSON object stores it with a generated <code>_id</code>; <code>GET /api/&lt;resource&gt;</code>
lists them (json-server's <code>_sort</code>, <code>_page</code>, <code>_limit</code>,
<code>q</code> and <code>field=value</code> filters work), and <code>GET</code>, <code>PUT</code>,
<code>PATCH</code> and <code>DELETE /api/&lt;resource&gt;/&lt;_id&gt;</code> work on one.
<a href="/health">/health</a> reports the resources and <a href="/">/</a> shows them.</p>
]],
  help = [[
<p>It was started with <code>--default help</code>, so every path gets this page until a
provision is loaded. Without that option the built-in default also serves a generic REST
API under <code>/api</code>, <code>/health</code> and a home page at <code>/</code>.</p>
]],
}

local function escape(s)
  return (s:gsub("[<>&\"]", {["<"] = "&lt;", [">"] = "&gt;", ["&"] = "&amp;", ['"'] = "&quot;"}))
end

-- The rules of the default in `mode` ("rest" or "help") become the global
-- registerRules. The guide is the 404 page; a 405 (e.g. POST /health)
-- keeps h1mock's short page, which names the method and the allowed ones:
-- the guide is about paths that have no rule.
function M.serve(mode)
  local served = assert(SERVED[mode], "h1mock.default: unknown mode")
  local anything = mode == "rest" and "Anything else" or "Everything"
  local function help()
    local page = guide:format(escape(request.method), escape(request.path), served, anything)
    return page, 404, {["Content-Type"] = "text/html; charset=utf-8"}
  end
  function registerRules()
    -- a browser page of any origin may call the default, unless --cors says otherwise
    app.cors(require("h1mock").cors_option or "*")
    if mode == "rest" then
      rest.mount("/api")
      app.get("/health", rest.health)
      app.get("/", rest.home("/api"))
    end
    app.register_error_handler(404, help)
  end
  return M
end

M.serve("rest")
return M
