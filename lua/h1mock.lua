-- h1mock.lua: the parts of the Flask surface that read best in Lua: the
-- Response class (what make_response, jsonify and redirect return and what
-- after_request hooks receive) and its case-insensitive Headers. The C side
-- builds responses through new_response and recognises them by metatable.
local M = {}

local lower, type, tostring, rawget, rawset, getmetatable, setmetatable =
  string.lower, type, tostring, rawget, rawset, getmetatable, setmetatable

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

function response_methods.get_data(self) return rawget(self, "_data") end
function response_methods.set_data(self, data)
  if type(data) ~= "string" then
    error("set_data: the body must be a string, not a " .. type(data), 2)
  end
  rawset(self, "_data", data)
end
function response_methods.get_json(self) return json.decode(rawget(self, "_data")) end

-- Text types get a charset when set through `mimetype`, as Werkzeug does.
local CHARSET_TYPES = {
  ["application/ecmascript"] = true, ["application/javascript"] = true,
  ["application/sql"] = true, ["application/xml"] = true, ["application/xml-dtd"] = true,
  ["application/xml-external-parsed-entity"] = true,
}

-- A header table of a view ({name = value}, {name = {v1, v2}} or a list of
-- pairs) as the list of a Headers object; nil and a message when a name or
-- a value has the wrong type.
local function header_list(t)
  local list = {}
  local function one(name, value)
    if type(name) ~= "string" then
      return "a header name must be a string, not a " .. type(name)
    end
    local vt = type(value)
    if vt ~= "string" and vt ~= "number" and vt ~= "boolean" then
      return "header '" .. name .. "' has a " .. vt .. " value; use a string or a number"
    end
    list[#list + 1] = {name, tostring(value)}
  end
  for k, v in pairs(t) do
    local err
    if math.type(k) == "integer" and type(v) == "table" then
      err = one(v[1], v[2])
    elseif type(v) == "table" then
      for i = 1, #v do
        err = err or one(k, v[i])
      end
    else
      err = one(k, v)
    end
    if err then return nil, err end
  end
  return list
end

-- "201", 201 or "201 Made It": the code and the reason (nil when none).
local function parse_status(value)
  local code, reason
  if math.type(value) == "integer" then
    code = value
  elseif type(value) == "string" then
    local c, r = value:match("^%s*(%d%d%d)%s*(.-)%s*$")
    code, reason = math.tointeger(tonumber(c)), r ~= "" and r or nil
  end
  -- 1xx would announce a second response that never comes
  if code == nil or code < 200 or code > 999 then return nil end
  return code, reason
end

local function shown(value)
  if type(value) == "string" then return "'" .. value .. "'" end
  if type(value) == "number" then return tostring(value) end
  return "a " .. type(value)
end

-- The setters check their value and return a message when it is wrong,
-- which __newindex raises at the assignment's line: a wrong value would
-- otherwise be dropped without a word, or fail later with no line to show.
local setters = {}

local function set_status(self, value, want)
  local code, reason = parse_status(value)
  if not code then return want .. ", not " .. shown(value) end
  rawset(self, "_status", code)
  rawset(self, "_reason", reason)
  rawset(self, "_reason_code", reason and code or nil)
end

function setters.status_code(self, value)
  return set_status(self, value, "response.status_code must be an integer from 200 to 999 "
                    .. "(or a string like '201 Created')")
end

function setters.status(self, value)
  return set_status(self, value, "response.status must look like '404 Not Found' (a code "
                    .. "from 200 to 999)")
end

function setters.data(self, value)
  if type(value) ~= "string" then return "response.data must be a string, not " .. shown(value) end
  rawset(self, "_data", value)
end

function setters.headers(self, value)
  if getmetatable(value) == Headers then
    rawset(self, "_headers", value)
    return
  end
  if type(value) ~= "table" then
    return "response.headers must be a table of headers, not " .. shown(value)
  end
  local list, err = header_list(value)
  if not list then return "response.headers: " .. err end
  rawset(self, "_headers", M.headers(list))
end

function setters.content_type(self, value)
  if value ~= nil and type(value) ~= "string" then
    return "response.content_type must be a string or nil, not " .. shown(value)
  end
  headers_methods.set(rawget(self, "_headers"), "Content-Type", value)
end

function setters.mimetype(self, value)
  if type(value) ~= "string" or not value:match("^[^;%s/]+/[^;%s/]+$") then
    return "response.mimetype must be a type without parameters, like 'text/plain', not "
      .. shown(value)
  end
  local mt = lower(value)
  if mt:sub(1, 5) == "text/" or CHARSET_TYPES[mt] or mt:sub(-4) == "+xml" then
    value = value .. "; charset=utf-8"
  end
  headers_methods.set(rawget(self, "_headers"), "Content-Type", value)
end

function setters.is_json() return "response.is_json is read-only" end
function setters.json() return "response.json is read-only; set response.data" end

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

Response.__index = function(self, key)
  local m = response_methods[key]
  if m then return bound(self, m) end
  if key == "status_code" then
    return rawget(self, "_status")
  elseif key == "data" then
    return rawget(self, "_data")
  elseif key == "headers" then
    return rawget(self, "_headers")
  elseif key == "status" then
    local code = rawget(self, "_status")
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
    return json.decode(rawget(self, "_data"))
  end
end
Response.__newindex = function(self, key, value)
  local set = setters[key]
  if set then
    local err = set(self, value)
    if err then error(err, 2) end
  elseif response_methods[key] then
    error("response." .. key .. " is a method and cannot be replaced", 2)
  else
    rawset(self, key, value)
  end
end
Response.__name = "Response"
Response.__tostring = function(self)
  return "<Response " .. #rawget(self, "_data") .. " bytes [" .. self.status .. "]>"
end

M.Response = Response

function M.new_response(data, status, reason, list)
  -- The fields live under private names so that every assignment goes
  -- through __newindex and its checks; C reads them raw.
  return setmetatable({
    _data = data,
    _status = status,
    _reason = reason,
    _reason_code = reason and status or nil,
    _headers = M.headers(list),
  }, Response)
end

return M
