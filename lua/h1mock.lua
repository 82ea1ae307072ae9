-- h1mock.lua: the parts of the Flask surface that read best in Lua: the
-- Response class (what make_response, jsonify and redirect return and what
-- after_request hooks receive) and its case-insensitive Headers. The C side
-- builds responses through new_response and recognises them by metatable.
local M = {}

local lower, type, tostring, rawget, rawset, setmetatable =
  string.lower, type, tostring, rawget, rawset, setmetatable

-- Methods come back bound to their object, so that obj.method(...) works
-- as well as obj:method(...), as it does on the request object.
local function bound(self, m)
  return function(first, ...)
    if first == self then return m(self, ...) end
    return m(self, first, ...)
  end
end

-- Headers: an ordered list of {name, value}; lookups ignore case.
-- Methods take precedence over header names: use :get("set") for a header
-- literally called "set".
local Headers = {}
local headers_methods = {}

local function find(list, name)
  local want = lower(name)
  for i = 1, #list do
    if lower(list[i][1]) == want then return i end
  end
end

function headers_methods.get(self, name, default)
  local list = rawget(self, "_list")
  local i = find(list, name)
  if i then return list[i][2] end
  return default
end

function headers_methods.getlist(self, name)
  local out, want = {}, lower(name)
  for _, p in ipairs(rawget(self, "_list")) do
    if lower(p[1]) == want then out[#out + 1] = p[2] end
  end
  return out
end

function headers_methods.remove(self, name)
  local list, want, j = rawget(self, "_list"), lower(name), 1
  for i = 1, #list do
    local p = list[i]
    list[i] = nil
    if lower(p[1]) ~= want then
      list[j] = p
      j = j + 1
    end
  end
end

function headers_methods.add(self, name, value)
  local list = rawget(self, "_list")
  list[#list + 1] = {name, tostring(value)}
end

function headers_methods.set(self, name, value)
  local list = rawget(self, "_list")
  local i = find(list, name)
  if i and value ~= nil then
    list[i] = {name, tostring(value)}
    -- later duplicates go: set means "exactly this value"
    for k = #list, i + 1, -1 do
      if lower(list[k][1]) == lower(name) then table.remove(list, k) end
    end
  else
    headers_methods.remove(self, name)
    if value ~= nil then headers_methods.add(self, name, value) end
  end
end

Headers.__index = function(self, key)
  local m = headers_methods[key]
  if m then return bound(self, m) end
  if type(key) == "string" then return headers_methods.get(self, key) end
end
Headers.__newindex = function(self, key, value) headers_methods.set(self, key, value) end
Headers.__pairs = function(self)
  local list, i = rawget(self, "_list"), 0
  return function()
    i = i + 1
    local p = list[i]
    if p then return p[1], p[2] end
  end, self, nil
end
Headers.__len = function(self) return #rawget(self, "_list") end

function M.headers(list)
  return setmetatable({_list = list or {}}, Headers)
end

-- Response
local Response = {}
local response_methods = {}

local function cookie_header(name, value, opts)
  opts = opts or {}
  local parts = {tostring(name) .. "=" .. tostring(value or "")}
  if opts.domain then parts[#parts + 1] = "Domain=" .. opts.domain end
  if opts.expires then
    local e = opts.expires
    if type(e) == "number" then e = os.date("!%a, %d %b %Y %H:%M:%S GMT", e) end
    parts[#parts + 1] = "Expires=" .. e
  end
  if opts.max_age then parts[#parts + 1] = "Max-Age=" .. math.floor(opts.max_age) end
  if opts.secure then parts[#parts + 1] = "Secure" end
  if opts.httponly then parts[#parts + 1] = "HttpOnly" end
  parts[#parts + 1] = "Path=" .. (opts.path or "/")
  if opts.samesite then parts[#parts + 1] = "SameSite=" .. opts.samesite end
  return table.concat(parts, "; ")
end

function response_methods.set_cookie(self, name, value, opts)
  if type(name) ~= "string" then
    error("set_cookie: the cookie name must be a string", 2)
  end
  self.headers:add("Set-Cookie", cookie_header(name, value, opts))
end

function response_methods.delete_cookie(self, name, opts)
  opts = opts or {}
  response_methods.set_cookie(self, name, "", {
    path = opts.path, domain = opts.domain, max_age = 0,
    expires = "Thu, 01 Jan 1970 00:00:00 GMT",
  })
end

-- Sends the body in `chunks` pieces spread over `ms` milliseconds (the
-- connection paces them on the loop); returns the response, for chaining.
function response_methods.dribble(self, chunks, ms)
  if math.type(chunks) ~= "integer" or chunks < 1 or chunks > 10000 then
    error("dribble: chunks must be an integer from 1 to 10000", 2)
  end
  if type(ms) ~= "number" or ms ~= ms or ms < 0 or ms > 3600000 then
    error("dribble: milliseconds must be a number from 0 to 3600000", 2)
  end
  rawset(self, "_dribble_chunks", chunks)
  rawset(self, "_dribble_ms", math.floor(ms))
  return self
end

function response_methods.get_data(self) return self.data end
function response_methods.set_data(self, data) self.data = data end
function response_methods.get_json(self) return json.decode(self.data) end

Response.__index = function(self, key)
  local m = response_methods[key]
  if m then return bound(self, m) end
  if key == "status" then
    local code = rawget(self, "status_code")
    local reason = rawget(self, "_reason_code") == code and rawget(self, "_reason") or M.reason(code)
    return code .. " " .. reason
  elseif key == "content_type" then
    return self.headers:get("Content-Type")
  elseif key == "mimetype" then
    local ct = self.headers:get("Content-Type")
    return ct and ct:match("^[^;%s]*")
  elseif key == "is_json" then
    local mt = self.mimetype
    return mt == "application/json" or (mt ~= nil and mt:sub(-5) == "+json")
  elseif key == "json" then
    return json.decode(rawget(self, "data"))
  end
end
Response.__newindex = function(self, key, value)
  if key == "status" then
    -- "404 NOT FOUND" or 404, as Flask's response.status accepts
    local code, reason = tostring(value):match("^%s*(%d%d%d)%s*(.-)%s*$")
    if not code then error("response.status must look like '404 Not Found'", 2) end
    rawset(self, "status_code", math.tointeger(tonumber(code)))
    rawset(self, "_reason", reason ~= "" and reason or nil)
    rawset(self, "_reason_code", reason ~= "" and math.tointeger(tonumber(code)) or nil)
  else
    rawset(self, key, value)
  end
end
Response.__name = "Response"
Response.__tostring = function(self)
  return "<Response " .. #rawget(self, "data") .. " bytes [" .. self.status .. "]>"
end

M.Response = Response

function M.new_response(data, status, reason, list)
  return setmetatable({
    data = data,
    status_code = status,
    _reason = reason,
    _reason_code = reason and status or nil,
    headers = M.headers(list),
  }, Response)
end

return M
