-- The built-in default provision: what h1mock serves when the provisions
-- directory has no "initial". Every path answers 404 with a short guide.
local guide = [[
<!doctype html>
<html lang=en>
<title>h1mock: no provision loaded</title>
<style>body{font-family:sans-serif;max-width:46em;margin:2em auto;padding:0 1em}
pre{background:#f4f4f4;padding:1em;overflow:auto}</style>
<h1>h1mock is running, with nothing provisioned</h1>
<p>There is no rule for <code>%s %s</code>. h1mock answers from a <em>provision</em>:
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
lists every option.</p>
]]

local function escape(s)
  return (s:gsub("[<>&\"]", {["<"] = "&lt;", [">"] = "&gt;", ["&"] = "&amp;", ['"'] = "&quot;"}))
end

function help(e)
  local page = guide:format(escape(request.method), escape(request.path))
  return page, 404, {["Content-Type"] = "text/html; charset=utf-8"}
end

function registerRules()
  app.register_error_handler(404, help)
  app.register_error_handler(405, help)
end
