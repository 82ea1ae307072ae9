-- converters.lua: typed URL variables (Werkzeug converters).
--
-- What it shows:
--   * each converter, and what the view receives: <int:x> gives a Lua
--     integer, <float:x> a float, the others strings;
--   * converter arguments (min/max, length, the words of any(...));
--   * a value that does not fit is not a match: the answer is 404, the view
--     never runs, so views need no "is this a number?" checks;
--   * a static segment beats a variable: /users/me is not /users/<int:id>;
--   * `defaults` plus two rules on one endpoint: /posts is page 1 of /posts/page/<n>.
--
-- Try it:
--   curl localhost:8000/users/42            # {"id":42,"type":"integer"}
--   curl -i localhost:8000/users/abc        # 404: not an int
--   curl localhost:8000/users/me            # the static rule wins
--   curl localhost:8000/items/7             # min=1, max=999 (0 and 1000 are 404)
--   curl localhost:8000/prices/9.99         # {"amount":9.99,"type":"float"}; /prices/9 is 404
--   curl localhost:8000/files/docs/a/b.txt  # <path:...> takes slashes
--   curl localhost:8000/orders/0b0e2b5e-6c5f-4f0e-8d3c-2a4f6f1f9a10
--   curl localhost:8000/colors/red          # any(red, green, blue)
--   curl localhost:8000/skus/AB-12345       # exactly 8 characters
--   curl localhost:8000/reports/2024.json   # text and a variable in one segment
--   curl localhost:8000/posts               # page 1, from `defaults`

local function show(name, value)
  return {[name] = value, type = math.type(value) or type(value)}
end

function registerRules()
  app.get("/users/<int:id>", function(req, id) return show("id", id) end)
  app.get("/users/me", function() return {id = 0, name = "me"} end)
  app.get("/items/<int(min=1, max=999):id>", function(req, id) return show("id", id) end)
  app.get("/prices/<float:amount>", function(req, amount) return show("amount", amount) end)
  app.get("/files/<path:name>", function(req, name) return show("name", name) end)
  app.get("/orders/<uuid:order_id>", function(req, id) return show("order_id", id) end)
  app.get("/colors/<any(red, green, blue):color>", function(req, c) return show("color", c) end)
  app.get("/skus/<string(length=8):sku>", function(req, sku) return show("sku", sku) end)
  app.get("/reports/<int:year>.json", function(req, year) return show("year", year) end)

  local function posts(req, page) return {page = page, endpoint = req.endpoint} end
  app.add_url_rule("/posts", "posts", posts, {methods = {"GET"}, defaults = {page = 1}})
  app.add_url_rule("/posts/page/<int(min=1):page>", "posts", posts, {"GET"})
end
