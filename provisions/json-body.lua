-- json-body.lua: reading a JSON request body, checking it, answering from it.
--
-- What it shows:
--   * request.json: the decoded body when Content-Type is application/json
--     (or *+json), nil otherwise; a body that is not valid JSON stops the
--     view with a 400 by itself;
--   * an error handler that turns that 400 into JSON as well;
--   * checking fields and types, and a 400 that names what is wrong;
--   * json.null: a JSON null arrives as json.null (which is truthy), not nil;
--   * answering with values computed from the body;
--   * request.get_json{force = true, silent = true} for clients that send
--     JSON without the right Content-Type.
--
-- Try it:
--   curl -i localhost:8000/orders -H 'Content-Type: application/json' \
--        -d '{"customer":"ada","items":[{"sku":"pen","qty":2,"price_cents":150}]}'
--   # 201 {"customer":"ada","item_count":2,"total_cents":300,...}
--   curl -i localhost:8000/orders -H 'Content-Type: application/json' -d '{"items":[]}'
--   # 400 {"error":"missing fields","missing":["customer"]}
--   curl -i localhost:8000/orders -H 'Content-Type: application/json' -d '{"customer":'
--   # 400 {"error":"The request body is not valid JSON: ..."}
--   curl -i localhost:8000/orders -d 'customer=ada'       # 415: not JSON
--   curl localhost:8000/echo -d '{"any":"json"}'          # no Content-Type needed here

local function bad(message, extra)
  local body = extra or {}
  body.error = message
  return body, 400
end

local function check_item(i, item)
  local where = ("items[%d]"):format(i)
  if type(item) ~= "table" then return where .. " must be an object" end
  if type(item.sku) ~= "string" or item.sku == "" then return where .. ".sku must be a string" end
  if math.type(item.qty) ~= "integer" or item.qty < 1 then
    return where .. ".qty must be an integer >= 1"
  end
  if math.type(item.price_cents) ~= "integer" or item.price_cents < 0 then
    return where .. ".price_cents must be an integer >= 0"
  end
end

function create_order(req)
  local order = req.json
  if order == nil then
    return {error = "send JSON with Content-Type: application/json"}, 415
  end
  if type(order) ~= "table" or getmetatable(order) == json.array_mt then
    return bad("the body must be a JSON object")
  end

  local missing = {}
  for _, name in ipairs{"customer", "items"} do
    if order[name] == nil or order[name] == json.null then missing[#missing + 1] = name end
  end
  if #missing > 0 then return bad("missing fields", {missing = missing}) end
  if type(order.customer) ~= "string" then return bad("customer must be a string") end
  if type(order.items) ~= "table" or #order.items == 0 then
    return bad("items must be a non-empty array")
  end

  local count, total = 0, 0
  for i, item in ipairs(order.items) do
    local problem = check_item(i, item)
    if problem then return bad(problem) end
    count = count + item.qty
    total = total + item.qty * item.price_cents
  end

  local id = store.uuid()
  return {
    id = id,
    customer = order.customer,
    item_count = count,
    total_cents = total,
    -- absent and null both mean "no coupon"
    coupon = (order.coupon ~= json.null and order.coupon) or json.null,
  }, 201, {Location = "/orders/" .. id}
end

function echo(req)
  local body = req.get_json{force = true, silent = true}
  if body == nil then return bad("the body is not JSON") end
  return {received = body, content_type = req.content_type or json.null}
end

function registerRules()
  app.add_url_rule("/orders", "create_order", create_order, {"POST"})
  app.add_url_rule("/echo", "echo", echo, {"POST"})
  -- invalid JSON in request.json aborts with 400: answer it as JSON too
  app.register_error_handler(400, function(e)
    return {error = e.description}, 400
  end)
end
