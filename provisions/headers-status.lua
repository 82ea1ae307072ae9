-- headers-status.lua: choosing the status line and the headers of an answer.
--
-- What it shows:
--   * `return body, status, headers` (and `body, status`), Flask style;
--   * any status code, and a reason phrase of your own ("503 Down For Maintenance");
--   * reading request headers in any case, and echoing one back;
--   * a header with two values, a Content-Type of your own;
--   * make_response to build an answer step by step (headers:add, set_cookie);
--   * abort(response) to stop with a 401 that carries WWW-Authenticate;
--   * redirect(location, code).
--
-- Try it:
--   curl -i localhost:8000/status/418                 # any code from 200 to 599
--   curl -i -X POST localhost:8000/things -H 'X-Request-Id: abc'  # 201, Location, echo
--   curl -i localhost:8000/maintenance                # 503 Down For Maintenance, Retry-After: 120
--   curl -i localhost:8000/report.csv                 # text/csv
--   curl -i localhost:8000/session                    # two Set-Cookie, two Link lines
--   curl -i localhost:8000/secret                     # 401 + WWW-Authenticate
--   curl -i localhost:8000/secret -H 'Authorization: Bearer letmein'
--   curl -i localhost:8000/old-report                 # 301 to /report.csv

local next_id = 0

function registerRules()
  -- "" for 204 and 304, which never carry a body
  app.get("/status/<int(min=200, max=599):code>", function(req, code)
    if code == 204 or code == 304 then return "", code end
    return {status = code}, code
  end)

  app.post("/things", function(req)
    next_id = next_id + 1
    return {id = next_id}, 201, {
      Location = "/things/" .. next_id,
      ["X-Request-Id"] = req.headers["x-request-id"] or "none",   -- any case works
    }
  end)

  app.get("/maintenance", function()
    return "back soon", "503 Down For Maintenance", {["Retry-After"] = 120}
  end)

  app.get("/report.csv", function()
    return "id,name\n1,ada\n", {["Content-Type"] = "text/csv; charset=utf-8"}
  end)

  app.get("/session", function()
    local resp = make_response({user = "ada"})
    resp.headers:add("Link", "</users/1>; rel=self")
    resp.headers:add("Link", "</users>; rel=collection")
    resp:set_cookie("sid", "s3ss10n", {httponly = true, max_age = 3600})
    resp:set_cookie("theme", "dark")
    return resp
  end)

  app.get("/secret", function(req)
    if req.headers.authorization ~= "Bearer letmein" then
      abort(make_response({error = "missing or wrong token"}, 401,
                          {["WWW-Authenticate"] = 'Bearer realm="mock"'}))
    end
    return {secret = 42}
  end)

  app.get("/old-report", function() return redirect("/report.csv", 301) end)
end
