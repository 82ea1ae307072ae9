-- rest.lua: the generic REST API (the global `rest` in every provision).
--
--   function registerRules()
--     rest.mount("/api")                   -- POST/GET /api/<resource>,
--   end                                    -- GET/PUT/PATCH/DELETE /api/<resource>/<id>
--
-- Documents live in the C store (`store`), one collection per resource, so
-- they survive provision swaps. Every document carries its id as `_id`
-- (a v4 UUID given at creation). Listing follows json-server's query
-- conventions: field=value filters (field_ne, field_gte, field_lte,
-- field_like too; a field no document has is ignored), q full text, _sort/_order, _page/_limit, _start/_end,
-- with X-Total-Count and Link headers.
--
-- rest.health() is the body of GET /health and rest.home(prefix) makes the
-- view of an HTML page of the same; the built-in default uses both.
local M = {}

local type, tostring, tonumber, pairs, ipairs, getmetatable, setmetatable =
  type, tostring, tonumber, pairs, ipairs, getmetatable, setmetatable
local lower, find, sub, format, concat, floor =
  string.lower, string.find, string.sub, string.format, table.concat, math.floor

local BAD_BODY = "Unable to process request."
local MAX_NAME = 1024 -- the store's limit for collection names and ids

local function array(t)
  return setmetatable(t or {}, json.array_mt)
end

local function is_object(v)
  return type(v) == "table" and getmetatable(v) ~= json.array_mt
end

local function bad_request()
  return {message = BAD_BODY}, 400
end

local function not_found(id)
  return {message = "Resource " .. id .. " does not exist."}, 404
end

-- A store write that was refused: with --data-dir, the disk is full or a
-- commit failed (store.status() says which). The service is unavailable,
-- not broken: 503.
local function store_failed(err)
  log.error("rest: the store refused a write: %s", tostring(err))
  return {message = "Unable to store the resource: " .. tostring(err)}, 503
end

local function put(coll, id, doc)
  local ok, err = store.put(coll, id, doc)
  if not ok then return nil, err end
  return true
end

-- ---------------------------------------------------------------------------
-- reading fields: "a.b.0.c" reaches nested objects and (0-based) arrays;
-- a key that holds a dot itself wins over the path.
-- ---------------------------------------------------------------------------

local function field(doc, name)
  if type(doc) ~= "table" then return nil end
  local v = doc[name]
  if v ~= nil or not find(name, ".", 1, true) then return v end
  v = doc
  for part in (name .. "."):gmatch("([^.]*)%.") do
    if type(v) ~= "table" then return nil end
    if getmetatable(v) == json.array_mt then
      local i = tonumber(part)
      v = i and math.tointeger(i) and v[i + 1] or nil
    else
      v = v[part]
    end
    if v == nil then return nil end
  end
  return v
end

-- The text a query value is compared with: numbers as JSON writes them.
local function text_of(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" or t == "boolean" then return tostring(v) end
  if v == json.null then return "null" end
  return nil -- objects and arrays match nothing
end

-- ---------------------------------------------------------------------------
-- filters
-- ---------------------------------------------------------------------------

local CONTROL = {q = true, _sort = true, _order = true, _page = true, _limit = true,
                 _start = true, _end = true}
local OPS = {"_gte", "_lte", "_ne", "_like"}

-- json-server takes a regular expression; a Lua pattern is the nearest
-- thing. It is matched caselessly by h1mock's own matcher, which counts its
-- steps: a value that needs more than LIKE_STEPS is a pattern too costly to
-- serve (the list answers 400), never a stalled server. A pattern Lua
-- refuses is searched for as plain text.
local like_match = require("h1mock").like
local LIKE_STEPS = 1000000

-- true or false; nil when the pattern takes too many steps on s.
local function like(s, pattern)
  local found, why = like_match(s, pattern, LIKE_STEPS)
  if found ~= nil then return found end
  if why == "steps" then return nil end
  return find(lower(s), lower(pattern), 1, true) ~= nil
end

local function compare_range(v, q)
  -- numbers numerically when both sides are numbers, else strings
  if type(v) == "number" then
    local n = tonumber(q)
    if n then return (v > n and 1) or (v < n and -1) or 0 end
    return nil
  elseif type(v) == "string" then
    return (v > q and 1) or (v < q and -1) or 0
  end
end

local function matches(doc, f)
  local v = field(doc, f.field)
  local op, values = f.op, f.values
  if op == "ne" then
    local t = text_of(v)
    for _, want in ipairs(values) do
      if t == want then return false end
    end
    return true
  end
  if v == nil then return false end
  if op == "eq" then
    local t = text_of(v)
    if t == nil then return false end
    for _, want in ipairs(values) do
      if t == want then return true end
    end
    return false
  elseif op == "like" then
    local t = text_of(v)
    if t == nil then return false end
    for _, want in ipairs(values) do
      local found = like(t, want)
      if found == nil then return nil end
      if found then return true end
    end
    return false
  else -- gte / lte: every bound holds
    for _, want in ipairs(values) do
      local c = compare_range(v, want)
      if c == nil then return false end
      if op == "gte" and c < 0 then return false end
      if op == "lte" and c > 0 then return false end
    end
    return true
  end
end

-- The field filters of the query string, in a stable order.
local function parse_filters(req)
  local filters = {}
  for key in pairs(req.args) do
    if key ~= "" and not CONTROL[key] then
      local name, op = key, "eq"
      for _, suffix in ipairs(OPS) do
        if #key > #suffix and sub(key, -#suffix) == suffix then
          name, op = sub(key, 1, -#suffix - 1), sub(suffix, 2)
          break
        end
      end
      -- unknown _x parameters are ignored; _id is a field like any other
      local underscore = sub(name, 1, 1) == "_" and name ~= "_id"
      if not underscore then
        filters[#filters + 1] = {field = name, op = op, values = req.args_list(key), key = key}
      end
    end
  end
  table.sort(filters, function(a, b) return a.key < b.key end)
  return filters
end

-- The filters whose field some document has: a parameter about a field
-- none has (?api_key=secret) is not about the documents at all, and is
-- ignored as python-flask-mock-rest-api ignores every parameter. A dotted
-- name counts by its first segment, or whole when a key holds the dot.
local function known_filters(filters, items)
  local kept = {}
  for _, f in ipairs(filters) do
    local name = f.field
    local first = name:match("^[^.]*")
    for _, doc in ipairs(items) do
      if doc[name] ~= nil or doc[first] ~= nil then
        kept[#kept + 1] = f
        break
      end
    end
  end
  return kept
end

local function has_text(v, q, depth)
  local t = type(v)
  if t == "string" then return find(lower(v), q, 1, true) ~= nil end
  if t == "table" and depth < 200 then
    for _, x in pairs(v) do
      if has_text(x, q, depth + 1) then return true end
    end
  end
  return false
end

-- ---------------------------------------------------------------------------
-- sorting: numbers numerically, then strings lexically, then booleans;
-- missing values (and null) last whatever the order; ties keep store order.
-- ---------------------------------------------------------------------------

local RANK = {number = 1, string = 2, boolean = 3}

local function cmp(a, b)
  local ra, rb = RANK[type(a)] or 4, RANK[type(b)] or 4
  if ra ~= rb then return ra < rb and -1 or 1 end
  if ra == 4 then return 0 end
  if ra == 3 then
    if a == b then return 0 end
    return a and 1 or -1
  end
  if a == b then return 0 end
  return a < b and -1 or 1
end

local function parse_sort(req)
  local sort = req.args._sort
  if not sort or sort == "" then return nil end
  local orders = {}
  for o in ((req.args._order or "") .. ","):gmatch("([^,]*),") do
    orders[#orders + 1] = lower(o:match("^%s*(.-)%s*$"))
  end
  local keys, i = {}, 0
  for name in (sort .. ","):gmatch("([^,]*),") do
    i = i + 1
    name = name:match("^%s*(.-)%s*$")
    local desc = orders[i] == "desc"
    if sub(name, 1, 1) == "-" then -- json-server 1.x spelling: _sort=-views
      name, desc = sub(name, 2), true
    end
    if name ~= "" then keys[#keys + 1] = {field = name, desc = desc} end
  end
  if #keys == 0 then return nil end
  return keys
end

local function sort_items(items, keys)
  local rows = {}
  for i, doc in ipairs(items) do
    local vals = {}
    for k, key in ipairs(keys) do
      local v = field(doc, key.field)
      if v == json.null then v = nil end
      vals[k] = v
    end
    rows[i] = {doc = doc, i = i, vals = vals}
  end
  local n = #keys
  table.sort(rows, function(a, b)
    for k = 1, n do
      local va, vb = a.vals[k], b.vals[k]
      if va == nil or vb == nil then
        if va ~= nil then return true end
        if vb ~= nil then return false end
      else
        local c = cmp(va, vb)
        if c ~= 0 then
          if keys[k].desc then return c > 0 end
          return c < 0
        end
      end
    end
    return a.i < b.i
  end)
  for i, row in ipairs(rows) do items[i] = row.doc end
end

-- ---------------------------------------------------------------------------
-- paging
-- ---------------------------------------------------------------------------

local function int_arg(s)
  local n = tonumber(s)
  if n == nil or n ~= n then return nil end
  n = floor(n)
  if n < -2^53 or n > 2^53 then return nil end
  return math.tointeger(n)
end

-- The URL of page `p`: the request's own query with _page replaced.
local function page_url(req, p)
  local parts = {}
  for pair in (req.query_string .. "&"):gmatch("([^&]*)&") do
    if pair ~= "" and not find(pair, "^_page=") and pair ~= "_page" then
      parts[#parts + 1] = pair
    end
  end
  parts[#parts + 1] = "_page=" .. p
  return req.base_url .. "?" .. concat(parts, "&")
end

-- What to cut from a list of `total` items: returns offset, limit (nil:
-- everything from offset) and the paging headers, or nil when the query asks
-- for no paging at all.
local function paging(req, total)
  local a = req.args
  local page, limit, first, last = a._page, a._limit, a._start, a._end
  if not (page or limit or first or last) then return nil end
  local headers = {["X-Total-Count"] = tostring(total)}
  limit = int_arg(limit)
  if page or (limit and not first and not last) then
    page = int_arg(page) or 1
    if page < 1 then page = 1 end
    if not limit or limit < 1 then limit = 10 end
    local pages = (total + limit - 1) // limit
    if pages < 1 then pages = 1 end
    local links = {format('<%s>; rel="first"', page_url(req, 1))}
    if page > 1 then
      links[#links + 1] = format('<%s>; rel="prev"', page_url(req, math.min(page - 1, pages)))
    end
    if page < pages then
      links[#links + 1] = format('<%s>; rel="next"', page_url(req, page + 1))
    end
    links[#links + 1] = format('<%s>; rel="last"', page_url(req, pages))
    headers.Link = concat(links, ", ")
    headers["Access-Control-Expose-Headers"] = "X-Total-Count, Link"
    if page > (total // limit) + 1 then return total, 0, headers end
    return (page - 1) * limit, limit, headers
  end
  headers["Access-Control-Expose-Headers"] = "X-Total-Count"
  local from = int_arg(first) or 0
  if from < 0 then from = 0 end
  local to = int_arg(last)
  if to == nil and limit then to = from + math.max(limit, 0) end
  if to == nil or to > total then to = total end
  if from > total then from = total end
  return from, math.max(to - from, 0), headers
end

-- ---------------------------------------------------------------------------
-- views
-- ---------------------------------------------------------------------------

local function list(req, coll)
  if #coll > MAX_NAME then return array() end
  local filters = parse_filters(req)
  local q = req.args.q
  if q == "" then q = nil end
  local sort = parse_sort(req)
  local items
  if #filters > 0 then
    items = store.list(coll)
    filters = known_filters(filters, items)
  end

  if items == nil and not q and not sort then
    -- nothing to look at: let the store cut the page
    local total = store.count(coll)
    local offset, limit, headers = paging(req, total)
    if not offset then return store.list(coll) end
    if limit == 0 then return array(), 200, headers end
    return store.list(coll, {offset = offset, limit = limit}), 200, headers
  end

  items = items or store.list(coll)
  if #filters > 0 or q then
    local kept = {}
    q = q and lower(q)
    for _, doc in ipairs(items) do
      local ok = true
      for _, f in ipairs(filters) do
        local m = matches(doc, f)
        if m == nil then
          return {message = f.key .. ": the pattern takes too many steps to match; simplify it"},
            400
        end
        if not m then ok = false break end
      end
      if ok and q and not has_text(doc, q, 0) then ok = false end
      if ok then kept[#kept + 1] = doc end
    end
    items = kept
  end
  if sort then sort_items(items, sort) end
  local offset, limit, headers = paging(req, #items)
  if not offset then return array(items) end
  local out = {}
  for i = offset + 1, math.min(offset + limit, #items) do out[#out + 1] = items[i] end
  return array(out), 200, headers
end

local function create(req, coll)
  local body = req.get_json{force = true, silent = true}
  if type(body) ~= "table" or #coll > MAX_NAME then return bad_request() end
  if is_object(body) then
    body._id = store.uuid()
    local ok, err = put(coll, body._id, body)
    if not ok then return store_failed(err) end
    return body
  end
  for i = 1, #body do
    if not is_object(body[i]) then return bad_request() end
  end
  for i = 1, #body do
    local doc = body[i]
    doc._id = store.uuid()
    local ok, err = put(coll, doc._id, doc)
    if not ok then return store_failed(err) end
  end
  return array(body)
end

function M.collection(req, coll)
  if req.method == "POST" then return create(req, coll) end
  return list(req, coll)
end

function M.item(req, coll, id)
  local doc = (#coll <= MAX_NAME and #id <= MAX_NAME) and store.get(coll, id) or nil
  if doc == nil then return not_found(id) end
  local method = req.method
  if method == "GET" or method == "HEAD" then return doc end
  if method == "DELETE" then
    local ok, err = store.delete(coll, id)
    if ok == nil then return store_failed(err) end
    return doc
  end
  local body = req.get_json{force = true, silent = true}
  if not is_object(body) then return bad_request() end
  if method == "PATCH" then
    for k, v in pairs(body) do doc[k] = v end
    body = doc
  end
  body._id = id
  local ok, err = put(coll, id, body)
  if not ok then return store_failed(err) end
  return body
end

-- Registers the REST rules under `prefix` ("/api" by default; "" or "/"
-- for the root). Call it inside registerRules(), once per prefix.
function M.mount(prefix)
  if prefix == nil then prefix = "/api" end
  if type(prefix) ~= "string" or (prefix ~= "" and sub(prefix, 1, 1) ~= "/") then
    error("rest.mount: the prefix must be a string starting with '/', like \"/api\"", 2)
  end
  prefix = prefix:gsub("/+$", "")
  app.add_url_rule(prefix .. "/<resource>", "rest " .. prefix .. "/<resource>", M.collection,
                   {methods = {"GET", "POST"}, strict_slashes = false})
  app.add_url_rule(prefix .. "/<resource>/<id>", "rest " .. prefix .. "/<resource>/<id>", M.item,
                   {methods = {"GET", "PUT", "PATCH", "DELETE"}, strict_slashes = false})
end

-- ---------------------------------------------------------------------------
-- health and the home page
-- ---------------------------------------------------------------------------

local function uptime()
  local started = require("h1mock").started_at or os.time()
  local s = os.time() - started
  if s < 0 then s = 0 end
  return math.tointeger(s) or floor(s)
end

-- APP_NAME and APP_VERSION as python-flask-mock-rest-api reads them; an
-- empty or unset variable leaves h1mock's own name and version.
local function setting(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return v
end

-- The body of GET /health (also a view: app.get("/health", rest.health)),
-- and its status: 503 with status "fail" while the store refuses writes.
-- `uptime` is the original's text ("0 hrs 0 mins 3 secs"), `uptime_seconds`
-- the same as an integer.
function M.health()
  local resources, total = array(), 0
  for _, name in ipairs(store.collections()) do
    local n = store.count(name)
    total = total + n
    resources[#resources + 1] = {name = name, count = n}
  end
  -- "fail" while the store refuses writes, with why in `output`.
  local state, why = store.status()
  local s = uptime()
  return {
    name = setting("APP_NAME", "h1mock"),
    version = setting("APP_VERSION", require("h1mock").version),
    uptime = format("%d hrs %d mins %d secs", s // 3600, s % 3600 // 60, s % 60),
    uptime_seconds = s,
    database = {total_resources_count = total, resources = resources},
    status = state == "ok" and "pass" or "fail",
    output = why,
  }, state == "ok" and 200 or 503
end

local function escape(s)
  return (tostring(s):gsub("[<>&\"']", {["<"] = "&lt;", [">"] = "&gt;", ["&"] = "&amp;",
                                          ['"'] = "&quot;", ["'"] = "&#39;"}))
end

local function url_segment(s)
  return (s:gsub("[^%w%-%._~]", function(c) return format("%%%02X", c:byte()) end))
end

local function duration(s)
  local d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
  if d > 0 then return format("%dd %dh %dm", d, h, m) end
  if h > 0 then return format("%dh %dm %ds", h, m, s % 60) end
  if m > 0 then return format("%dm %ds", m, s % 60) end
  return format("%ds", s)
end

local PAGE = [[
<!doctype html>
<html lang=en>
<meta charset=utf-8>
<title>%s %s</title>
<style>
body{font-family:system-ui,sans-serif;max-width:50em;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em}.status{color:#2a7d2a;font-weight:bold}
table{border-collapse:collapse;margin:1em 0}td,th{padding:.3em 1em;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right}pre{background:#f4f4f4;padding:1em;overflow:auto}code{background:#f4f4f4}
.muted{color:#777}
</style>
<h1>%s</h1>
<p>Version <b>%s</b> &middot; up <b>%s</b> (%d s) &middot; status <span class=status>%s</span>
&middot; <a href="/health">/health</a></p>
<h2>Resources</h2>
%s
<h2>Using the REST API</h2>
<p>Any name is a resource: POST a JSON object (or an array of objects) to
<code>%s/&lt;resource&gt;</code> and it is stored with a generated <code>_id</code>.</p>
<pre>
curl -X POST %s/users -H 'Content-Type: application/json' -d '{"name": "ada"}'
curl %s/users                       # all, in creation order
curl %s/users/&lt;_id&gt;                 # one
curl -X PUT   %s/users/&lt;_id&gt; -d '{"name": "bob"}'   # replace
curl -X PATCH %s/users/&lt;_id&gt; -d '{"age": 36}'      # merge
curl -X DELETE %s/users/&lt;_id&gt;
</pre>
<p>Lists take json-server's query parameters: <code>name=ada</code> (filter; repeat a
name for "either"; <code>a.b=1</code> for nested fields; <code>_ne</code>, <code>_gte</code>,
<code>_lte</code>, <code>_like</code> suffixes), <code>q=text</code> (full text),
<code>_sort=age,name&amp;_order=desc,asc</code>, <code>_page=2&amp;_limit=10</code> or
<code>_start=0&amp;_end=10</code> (with <code>X-Total-Count</code> and <code>Link</code> headers).</p>
<p class=muted>The data lives in h1mock's store and survives provision swaps. Replace this
default with your own provision: POST a Lua file to the admin port
(<code>/app/v1/provision/&lt;name&gt;</code>) or drop it into the provisions directory.</p>
]]

-- A view that renders the home page for an API mounted at `prefix`.
function M.home(prefix)
  prefix = (prefix or "/api"):gsub("/+$", "")
  local p = escape(prefix)
  return function()
    local h = M.health()
    local rows
    if #h.database.resources == 0 then
      rows = "<p class=muted>No resources yet.</p>"
    else
      local t = {"<table><tr><th>resource</th><th>documents</th></tr>"}
      for _, r in ipairs(h.database.resources) do
        t[#t + 1] = format('<tr><td><a href="%s/%s">%s</a></td><td class=n>%d</td></tr>',
                           p, escape(url_segment(r.name)), escape(r.name), r.count)
      end
      t[#t + 1] = format("<tr><th>total</th><th class=n>%d</th></tr></table>",
                         h.database.total_resources_count)
      rows = concat(t, "\n")
    end
    local host = request.host ~= "" and request.host or "localhost:8000"
    local base = escape("http://" .. host) .. p
    local page = format(PAGE, escape(h.name), escape(h.version), escape(h.name), escape(h.version),
                        duration(h.uptime_seconds), h.uptime_seconds, h.status,
                        rows, p, base, base, base, base, base, base)
    return page, 200, {["Content-Type"] = "text/html; charset=utf-8"}
  end
end

return M
