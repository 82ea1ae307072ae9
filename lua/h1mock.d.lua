---@meta _
-- h1mock.d.lua: type stubs of the provision API for lua-language-server (LuaLS).
--
-- This file is never run and is not compiled into h1mock: it only describes,
-- with LuaLS annotations, the globals a provision gets (app, request, jsonify,
-- make_response, abort, redirect, fault, json, log, sleep, http, store, rest, journal and
-- the sandbox's os), so an editor completes them, shows their documentation
-- and checks the types of their arguments. The README's "Provision
-- reference" says the same in prose; tests/integration/test_stubs.py checks
-- that every global and field the running server offers is declared here.
--
-- Use it: put a .luarc.json at the root of the folder you edit provisions in,
-- pointing workspace.library at this file (or at a copy of it; a path
-- relative to the workspace or absolute):
--
--   {
--     "$schema": "https://raw.githubusercontent.com/LuaLS/vscode-lua/master/setting/schema.json",
--     "runtime": {
--       "version": "Lua 5.4",
--       "builtin": {"io": "disable", "debug": "disable", "os": "disable"}
--     },
--     "workspace": {"library": ["path/to/h1mock/lua/h1mock.d.lua"]}
--   }
--
-- runtime.builtin hides what the sandbox takes away (io, debug, and all of os
-- but the five functions declared below), so using them is flagged as an
-- undefined global instead of failing at load time. The rest of the sandbox
-- keeps Lua's own signatures and needs no stubs: print writes to the log,
-- load takes text only, setmetatable refuses __gc, coroutine.create/resume/
-- wrap run on the budget of the request, require looks in the provisions
-- directory; dofile, loadfile, string.dump and package.loadlib are absent
-- although LuaLS still offers them. Any editor that runs
-- lua-language-server reads .luarc.json (VS Code with the "Lua" extension,
-- Neovim's lua_ls, Helix, Emacs lsp-mode...). Point workspace.library at this
-- file rather than at its folder: the folder also holds h1mock's runtime
-- (lua/default.lua defines globals of its own).

---------------------------------------------------------------------------
-- Shared types
---------------------------------------------------------------------------

---A status: an integer 200-999, or a string with a reason of your choice ("201 Made It").
---1xx (101 included) is refused: it would announce a second response that never comes.
---@alias h1mock.Status integer|string

---Header values are sent as text; numbers and booleans are converted.
---@alias h1mock.HeaderValue string|number|boolean

---`{["X-A"] = "1"}`, or `{["X-A"] = {"1", "2"}}` for two lines.
---@alias h1mock.HeaderMap table<string, h1mock.HeaderValue|h1mock.HeaderValue[]>

---A list of pairs, in order: `{{"X-A", "1"}, {"X-A", "2"}}`.
---@alias h1mock.HeaderPairs [string, h1mock.HeaderValue][]

---Headers given to a response: a map, a list of pairs, or a Headers object.
---@alias h1mock.HeaderTable h1mock.HeaderMap|h1mock.HeaderPairs|h1mock.Headers

---What may follow the body: a status, or headers (then the status is 200).
---@alias h1mock.StatusOrHeaders h1mock.Status|h1mock.HeaderTable

---What a view, a hook or an error handler may return, as in Flask: a string
---(`text/html; charset=utf-8`), a table (JSON), `json.null` / `json.empty_array`,
---or a Response; optionally followed by a status and/or headers:
---`body`, `body, status`, `body, headers`, `body, status, headers`.
---@alias h1mock.Body string|table|lightuserdata|h1mock.Response

---A view: called with the request, then the URL variables in rule order, then the
---`defaults` values sorted by name. `<int:x>` gives an integer, `<float:x>` a float,
---the other converters strings.
---@alias h1mock.View fun(req: h1mock.Request, ...): h1mock.Body?, h1mock.StatusOrHeaders?, h1mock.HeaderTable?

---An error handler: gets the error, answers like a view.
---@alias h1mock.ErrorHandler fun(e: h1mock.HTTPException): h1mock.Body?, h1mock.StatusOrHeaders?, h1mock.HeaderTable?

---A before_request hook: nil goes on to the view; anything else is the answer.
---@alias h1mock.BeforeHook fun(): h1mock.Body?, h1mock.StatusOrHeaders?, h1mock.HeaderTable?

---An after_request hook: gets the response, returns it (or another).
---@alias h1mock.AfterHook fun(resp: h1mock.Response): h1mock.Response

---A methods list or an options table.
---@alias h1mock.MethodsOrOptions h1mock.Method[]|h1mock.RuleOptions

---An HTTP method name, any case. GET brings HEAD along.
---@alias h1mock.Method "GET"|"HEAD"|"POST"|"PUT"|"PATCH"|"DELETE"|"OPTIONS"|string

---Options of a rule.
---@class h1mock.RuleOptions
---@field methods? h1mock.Method[] default `{"GET"}`; the app.get/post/... shortcuts ignore it
---@field defaults? table<string, any> more view arguments, after the URL variables, by name
---@field strict_slashes? boolean default true (`/a/` redirects `/a` with 308); false: both match
---@field endpoint? string the endpoint name when the positional one is nil

---The one-table form of app.add_url_rule.
---@class h1mock.RuleTable: h1mock.RuleOptions
---@field rule string
---@field view_func h1mock.View

---------------------------------------------------------------------------
-- app
---------------------------------------------------------------------------

---The application: registers URL rules, hooks and error handlers (Flask's surface).
---Every function works with `app.f(...)` and `app:f(...)`.
---Rules may be registered only inside registerRules(); hooks and error handlers
---at the top level of the file too. None of them may be called from a view.
---@class h1mock.App
app = {}

---Registers a URL rule. Rules use Werkzeug's syntax: `/users/<int:id>`.
---Converters: `<x>` or `<string(minlength=1, maxlength=, length=):x>` (one segment),
---`<int(fixed_digits=, min=, max=, signed=False):x>`, `<float(min=, max=, signed=False):x>`,
---`<path:x>` (slashes included), `<uuid:x>`, `<any(a, b, 'c-d'):x>`.
---A value that does not fit is no match (404). A static segment beats a variable.
---The default endpoint name is the methods and the rule: `GET /users/<int:id>`.
---@param rule string starts with `/`
---@param endpoint string? a name (request.endpoint, journal filters); one name maps to one function
---@param view_func h1mock.View
---@param methods_or_options? h1mock.MethodsOrOptions default `{"GET"}`
---@overload fun(rule: h1mock.RuleTable)
---@overload fun(self: h1mock.App, rule: string, endpoint: string?, view_func: h1mock.View, methods_or_options?: h1mock.MethodsOrOptions)
---@overload fun(self: h1mock.App, rule: h1mock.RuleTable)
function app.add_url_rule(rule, endpoint, view_func, methods_or_options) end

---Registers `view` for `rule`: `app.route(rule, view)` (GET) or `app.route(rule, options, view)`.
---@param rule string
---@param options h1mock.RuleOptions
---@param view h1mock.View
---@overload fun(rule: string, view: h1mock.View)
---@overload fun(self: h1mock.App, rule: string, view: h1mock.View)
---@overload fun(self: h1mock.App, rule: string, options: h1mock.RuleOptions, view: h1mock.View)
function app.route(rule, options, view) end

---Registers `view` for GET (and HEAD) on `rule`.
---@param rule string
---@param options h1mock.RuleOptions `methods` is ignored
---@param view h1mock.View
---@overload fun(rule: string, view: h1mock.View)
---@overload fun(self: h1mock.App, rule: string, view: h1mock.View)
---@overload fun(self: h1mock.App, rule: string, options: h1mock.RuleOptions, view: h1mock.View)
function app.get(rule, options, view) end

---Registers `view` for POST on `rule`.
---@param rule string
---@param options h1mock.RuleOptions `methods` is ignored
---@param view h1mock.View
---@overload fun(rule: string, view: h1mock.View)
---@overload fun(self: h1mock.App, rule: string, view: h1mock.View)
---@overload fun(self: h1mock.App, rule: string, options: h1mock.RuleOptions, view: h1mock.View)
function app.post(rule, options, view) end

---Registers `view` for PUT on `rule`.
---@param rule string
---@param options h1mock.RuleOptions `methods` is ignored
---@param view h1mock.View
---@overload fun(rule: string, view: h1mock.View)
---@overload fun(self: h1mock.App, rule: string, view: h1mock.View)
---@overload fun(self: h1mock.App, rule: string, options: h1mock.RuleOptions, view: h1mock.View)
function app.put(rule, options, view) end

---Registers `view` for PATCH on `rule`.
---@param rule string
---@param options h1mock.RuleOptions `methods` is ignored
---@param view h1mock.View
---@overload fun(rule: string, view: h1mock.View)
---@overload fun(self: h1mock.App, rule: string, view: h1mock.View)
---@overload fun(self: h1mock.App, rule: string, options: h1mock.RuleOptions, view: h1mock.View)
function app.patch(rule, options, view) end

---Registers `view` for DELETE on `rule`.
---@param rule string
---@param options h1mock.RuleOptions `methods` is ignored
---@param view h1mock.View
---@overload fun(rule: string, view: h1mock.View)
---@overload fun(self: h1mock.App, rule: string, view: h1mock.View)
---@overload fun(self: h1mock.App, rule: string, options: h1mock.RuleOptions, view: h1mock.View)
function app.delete(rule, options, view) end

---Sets the handler of an HTTP error (400-599); registering a code again replaces it.
---It runs for abort(code), routing 404 and 405, the 400 of invalid JSON, and (500) errors
---raised by views and before_request hooks. Its return is treated like a view's, so the
---status is 200 unless it returns one: `return {error = e.name}, 404`.
---@param code integer 400-599
---@param handler h1mock.ErrorHandler
---@overload fun(self: h1mock.App, code: integer, handler: h1mock.ErrorHandler)
function app.register_error_handler(code, handler) end

---Alias of app.register_error_handler.
---@param code integer 400-599
---@param handler h1mock.ErrorHandler
---@overload fun(self: h1mock.App, code: integer, handler: h1mock.ErrorHandler)
function app.errorhandler(code, handler) end

---Adds a hook that runs before every routed view, in registration order (not for
---routing 404/405/308 or automatic OPTIONS). It takes no arguments (use `request`);
---a non-nil return is the response and skips the remaining hooks and the view.
---@param hook h1mock.BeforeHook
---@overload fun(self: h1mock.App, hook: h1mock.BeforeHook)
function app.before_request(hook) end

---Adds a hook that gets every response (routing answers included) and must return
---one. Hooks run in reverse registration order.
---@param hook h1mock.AfterHook
---@overload fun(self: h1mock.App, hook: h1mock.AfterHook)
function app.after_request(hook) end

---Options of app.cors.
---@class h1mock.CorsOptions
---@field origins? string|string[] `"*"` (the default) or origins such as `"http://localhost:3000"`
---@field methods? string|string[] a preflight's allowed methods; default: the path's own
---@field headers? string|string[] a preflight's allowed headers; default: those it asks for
---@field max_age? integer seconds a browser may keep a preflight's answer (default 600)
---@field credentials? boolean Allow-Credentials with origins (default true; never with `"*"`)

---This provision's CORS, whatever --cors says: `false` or `"off"`, `"*"`, one origin, or
---options. At the top level or in registerRules().
---@param cors false|string|h1mock.CorsOptions
---@overload fun(self: h1mock.App, cors: false|string|h1mock.CorsOptions)
function app.cors(cors) end

---------------------------------------------------------------------------
-- request
---------------------------------------------------------------------------

---The request being served. It is the first argument of a view and the global
---`request` while a view, hook or error handler runs (also after sleep). All fields
---are read-only; reading one not listed here raises. Do not keep it: after its
---response is sent, reading it raises `request: this request has ended`.
---@class h1mock.Request
---@field method string the method, upper case: `"POST"`
---@field path string the percent-decoded path: `"/r/a b"`
---@field query_string string the raw query, `""` when none
---@field full_path string `path .. "?" .. query_string` (the `?` is always there)
---@field args table<string, string> the query, first value per key, `+` and `%XX` decoded
---@field headers table<string, string> lower-case names, any-case lookup; repeats joined by `, `
---@field data string the raw body (chunked bodies reassembled), `""` when none
---@field json any the body decoded when the Content-Type is JSON, else nil; bad JSON aborts 400
---@field is_json boolean whether the Content-Type is JSON
---@field content_type string? the Content-Type header
---@field mimetype string the content type without parameters, `""` when none
---@field content_length integer? the body length when a Content-Length was sent
---@field form table<string, string> a urlencoded form body, first value per key; else `{}`
---@field cookies table<string, string> from the Cookie header, values as sent
---@field remote_addr string the client's IP address
---@field host string the Host header, `""` when none
---@field scheme "http"
---@field url string `http://` .. host .. raw path .. `?` query
---@field base_url string url without the query
---@field view_args table<string, any> URL variables and defaults by name
---@field endpoint string? the endpoint of the matched rule; nil in a routing 404
local Request = {}

---Every value of one query key, in order.
---@param key string
---@return string[]
---@overload fun(self: h1mock.Request, key: string): string[]
function Request.args_list(key) end

---The decoded body. `force`: parse whatever the Content-Type; `silent`: nil instead
---of the 400 on invalid JSON.
---@param opts? {force?: boolean, silent?: boolean}
---@return any
---@overload fun(self: h1mock.Request, opts?: {force?: boolean, silent?: boolean}): any
function Request.get_json(opts) end

---The request being served (only while a view, hook or error handler runs).
---@type h1mock.Request
request = nil

---------------------------------------------------------------------------
-- Responses
---------------------------------------------------------------------------

---Headers of a Response: ordered, repeats kept, names in any case. `h["X-A"]` reads the
---first value, `h["X-A"] = v` replaces all (nil removes), `pairs(h)` walks the lines,
---`#h` counts them. Methods work with `:` and `.`; a header literally named like a
---method must be read with `h:get("set")`.
---@class h1mock.Headers
---@field [string] string?
local Headers = {}

---The first value of `name`, or `default`.
---@param name string
---@param default? string
---@return string?
---@overload fun(self: h1mock.Headers, name: string, default?: string): string?
function Headers.get(name, default) end

---Every value of `name`, in order.
---@param name string
---@return string[]
---@overload fun(self: h1mock.Headers, name: string): string[]
function Headers.getlist(name) end

---Adds one more line `name: value`.
---@param name string
---@param value h1mock.HeaderValue
---@overload fun(self: h1mock.Headers, name: string, value: h1mock.HeaderValue)
function Headers.add(name, value) end

---Replaces every line of `name` by one with `value` (nil removes them).
---@param name string
---@param value h1mock.HeaderValue?
---@overload fun(self: h1mock.Headers, name: string, value: h1mock.HeaderValue?)
function Headers.set(name, value) end

---Removes every line of `name`.
---@param name string
---@overload fun(self: h1mock.Headers, name: string)
function Headers.remove(name) end

---A response, as make_response, jsonify and redirect build it and after_request hooks
---receive it. Change it, then return it.
---Assigning a field a value of the wrong type raises at the assignment's line.
---@class h1mock.Response
---@field status_code integer the status 200-999, read/write (`"201 Made It"` is accepted)
---@field status string the status line text, `"201 Created"`; `"299 FINE"` sets code and reason
---@field data string the body
---@field headers h1mock.Headers assigning a plain header table replaces it with its lines
---@field content_type string? the Content-Type; assigning sets it as given, nil removes it
---@field mimetype string? Content-Type without parameters; `"text/plain"` sets it with a charset
---@field is_json boolean whether the body is JSON by its Content-Type (read-only)
---@field json any the decoded body (read-only)
local Response = {}

---The body.
---@return string
---@overload fun(self: h1mock.Response): string
function Response.get_data() end

---Sends the body in `chunks` pieces (1-10000, chunked coding) spread over `ms`
---milliseconds (0-3600000), without blocking other requests; returns the response.
---`return make_response(body, 200):dribble(10, 5000)`.
---@param chunks integer
---@param ms number
---@return h1mock.Response
---@overload fun(self: h1mock.Response, chunks: integer, ms: number): h1mock.Response
function Response.dribble(chunks, ms) end

---Replaces the body.
---@param data string
---@overload fun(self: h1mock.Response, data: string)
function Response.set_data(data) end

---The decoded body, or nil and a message.
---@return any
---@return string? err
---@overload fun(self: h1mock.Response): any, string?
function Response.get_json() end

---Options of set_cookie.
---@class h1mock.CookieOptions
---@field max_age? number seconds (rounded down)
---@field expires? string|number an HTTP date, or Unix seconds
---@field path? string default `/`
---@field domain? string
---@field secure? boolean
---@field httponly? boolean
---@field samesite? "Strict"|"Lax"|"None"|string

---Adds a Set-Cookie header; the value is sent as given.
---@param name string
---@param value string
---@param opts? h1mock.CookieOptions
---@overload fun(self: h1mock.Response, name: string, value: string, opts?: h1mock.CookieOptions)
function Response.set_cookie(name, value, opts) end

---Expires the cookie now.
---@param name string
---@param opts? {path?: string, domain?: string}
---@overload fun(self: h1mock.Response, name: string, opts?: {path?: string, domain?: string})
function Response.delete_cookie(name, opts) end

---What an error handler receives (abort, routing errors, invalid JSON, errors raised by
---a view). `tostring(e)` gives `"404 Not Found: description"`.
---@class h1mock.HTTPException
---@field code integer
---@field name string the reason phrase: `"Not Found"`
---@field description string? the abort text or a default sentence

---A response of `body` as a view would return it; `make_response()` is an empty 200.
---@param body? h1mock.Body
---@param status? h1mock.Status
---@param headers? h1mock.HeaderTable
---@return h1mock.Response
---@overload fun(body: h1mock.Body, headers: h1mock.HeaderTable): h1mock.Response
function make_response(body, status, headers) end

---A JSON response (always `application/json`): `jsonify(t)` is t; `jsonify(a, b, ...)` an
---array; `jsonify()` `{}`; `jsonify("s")` the JSON string `"s"`.
---@param ... any
---@return h1mock.Response
function jsonify(...) end

---A redirect with a small HTML body and the Location header.
---@param location string
---@param code? integer 300-399, default 302
---@return h1mock.Response
function redirect(location, code) end

---Stops the view or hook now with an HTTP error (400-599): the error handler of that
---code runs if there is one, else a default page showing `description`.
---`abort(response)` sends that response as it is.
---@param code integer 400-599
---@param description? string
---@overload fun(response: h1mock.Response)
function abort(code, description) end

---A Response the connection answers by misbehaving, for testing clients: "reset" (a TCP
---reset), "empty" (closed without a byte), "random" (bytes that are not HTTP, then
---closed), "malformed_chunk" (a valid head, then a broken chunked body). after_request
---hooks see it like any Response; the journal records the fault.
---@param kind "reset"|"empty"|"random"|"malformed_chunk"
---@return h1mock.Response
function fault(kind) end

---------------------------------------------------------------------------
-- Provision contract, sleep, log
---------------------------------------------------------------------------

---Defined by the provision, called once after the file ran: register rules here.
---A file without it fails to load.
function registerRules() end

---Suspends only this request for `seconds` (fractions allowed); every other request
---keeps being served. Allowed in views, hooks and error handlers; it raises at load
---time, in a coroutine the provision created and in functions called back from C.
---@param seconds number >= 0
function sleep(seconds) end

---------------------------------------------------------------------------
-- http: calling other services
---------------------------------------------------------------------------

---What http.request and http.request_async send.
---@class h1mock.HttpOptions
---@field url string `"http://host:port/path?query"`; http:// only (https fails: "https is not supported yet")
---@field method? string default `"GET"`
---@field headers? table<string, string|number>
---@field body? string|table a table is sent as JSON, with `Content-Type: application/json` unless set
---@field timeout? number seconds for the whole call, default 10

---An answer to http.request.
---@class h1mock.HttpResponse
---@field status integer
---@field headers table<string, string> lower-case names, repeats joined with `", "`
---@field header_list string[][] every `{name, value}` in order, names as received
---@field body string
local HttpResponse = {}

---The body decoded as JSON; nil and a message when it is not JSON.
---@return any
---@return string? error
function HttpResponse:json() end

---Outbound HTTP/1.1 calls (--outbound decides where to; at most 256 calls in flight per
---server).
---@class h1mock.Http
http = {}

---Calls another service and waits for its answer; only this request waits, others are
---served, and the wait costs no instruction budget. Only while a request runs (not at
---load time, not in a coroutine the provision created). On failure (refused, timed
---out, DNS, a malformed answer, a body over --client-max-body) returns nil and a message.
---@param opts h1mock.HttpOptions
---@return h1mock.HttpResponse?
---@return string? error
function http.request(opts) end

---The request as a proxy sends it on to `base_url` (whose path is put before the
---request's; hop-by-hop headers dropped, Via added), and the answer as a Response to
---return from the view, which after_request hooks then see. When the upstream fails
---the Response is a 502 (504 on a timeout; 508 when the request came round to this
---server). Waits as http.request does.
---@param req h1mock.Request
---@param base_url string `"http://host:port[/prefix]"`
---@return h1mock.Response
function http.forward(req, base_url) end

---Sends a call without waiting for it (a webhook); its outcome goes to the log. Returns
---true, or nil and a message when it could not be started.
---@param opts h1mock.HttpOptions
---@return true?
---@return string? error
function http.request_async(opts) end

---Log lines on stderr, at a level. Each takes a string.format pattern and its arguments.
---@class h1mock.Log
log = {}

---Only shown with --verbose.
---@param fmt string
---@param ... any
function log.debug(fmt, ...) end

---@param fmt string
---@param ... any
function log.info(fmt, ...) end

---@param fmt string
---@param ... any
function log.warning(fmt, ...) end

---Alias of log.warning.
---@param fmt string
---@param ... any
function log.warn(fmt, ...) end

---@param fmt string
---@param ... any
function log.error(fmt, ...) end

---------------------------------------------------------------------------
-- json
---------------------------------------------------------------------------

---h1mock's JSON codec. Objects are written with sorted keys.
---@class h1mock.Json
json = {}

---Compact JSON of `value`. A table is an array when its keys are exactly 1..n or its
---metatable is json.array_mt; `{}` is an object. Raises for functions, NaN,
---infinity, boolean keys, cycles and nesting deeper than 1000.
---@param value any
---@return string
function json.encode(value) end

---The value of JSON text (arrays carry json.array_mt, null is json.null), or nil and
---a message. Raises only when `text` is not a string.
---@param text string
---@return any value
---@return string? err
function json.decode(text) end

---JSON null. A light userdata, so truthy: test `v == json.null`.
---@type lightuserdata
json.null = nil

---Encodes as `[]`.
---@type lightuserdata
json.empty_array = nil

---The metatable that makes a table encode as an array, even an empty one:
---`setmetatable(t, json.array_mt)`.
---@type table
json.array_mt = {}

---------------------------------------------------------------------------
-- store
---------------------------------------------------------------------------

---Documents (any value json.encode accepts) by collection and id, shared by every
---provision and kept across swaps (on disk with --data-dir). Collections and ids
---are strings of 1 to 1024 bytes. Writes return nil and a message when the disk fails.
---@class h1mock.Store
store = {}

---Inserts or replaces a document.
---@param coll string
---@param id string
---@param value any
---@return true|nil ok
---@return string? err
function store.put(coll, id, value) end

---A fresh copy of the document, or nil.
---@param coll string
---@param id string
---@return any
function store.get(coll, id) end

---@param coll string
---@param id string
---@return boolean|nil existed nil when the store refuses writes
---@return string? err
function store.delete(coll, id) end

---The documents in insertion order (an array, `[]` when none).
---@param coll string
---@param opts? {offset?: integer, limit?: integer}
---@return any[]
function store.list(coll, opts) end

---@param coll string
---@return integer
function store.count(coll) end

---The collection names, in creation order.
---@return string[]
function store.collections() end

---Empties one collection, or all of them.
---@param coll? string
---@return true|nil ok
---@return string? err
function store.clear(coll) end

---A random version-4 UUID.
---@return string
function store.uuid() end

---"ok", or "degraded" and why: with --data-dir, the disk is full (writes
---are refused until a retry succeeds) or a commit failed (read-only until
---restarted).
---@return "ok"|"degraded" state
---@return string? reason
function store.status() end

---------------------------------------------------------------------------
-- rest
---------------------------------------------------------------------------

---The generic REST API (json-server style) over the store.
---@class h1mock.Rest
rest = {}

---Registers `POST/GET prefix/<resource>` and `GET/PUT/PATCH/DELETE prefix/<resource>/<id>`.
---Call it inside registerRules(); `""` or `"/"` mounts at the root.
---@param prefix? string default `"/api"`
function rest.mount(prefix) end

---@class h1mock.Health
---@field name string `APP_NAME` when set, else `"h1mock"`
---@field version string `APP_VERSION` when set, else h1mock's version
---@field uptime string `"0 hrs 2 mins 5 secs"`
---@field uptime_seconds integer the same in seconds
---@field database {total_resources_count: integer, resources: {name: string, count: integer}[]}
---@field status "pass"|"fail" "fail" while the store refuses writes
---@field output string? why it fails

---The health report and its HTTP status (200, or 503 when it fails); also a
---view: `app.get("/health", rest.health)`.
---@return h1mock.Health
function rest.health() end

---A view that renders the HTML home page for an API mounted at `prefix`.
---@param prefix? string default `"/api"`
---@return h1mock.View
function rest.home(prefix) end

---The view of `prefix/<resource>`: POST creates, GET lists.
---@param req h1mock.Request
---@param resource string
---@return table body
---@return integer? status
---@return h1mock.HeaderTable? headers
function rest.collection(req, resource) end

---The view of `prefix/<resource>/<id>`: GET, PUT, PATCH, DELETE.
---@param req h1mock.Request
---@param resource string
---@param id string
---@return table body
---@return integer? status
function rest.item(req, resource, id) end

---------------------------------------------------------------------------
-- journal
---------------------------------------------------------------------------

---Which journal entries to take; every field is optional and they combine with AND.
---@class h1mock.JournalFilter
---@field method? string exact, any case
---@field path? string exact
---@field path_prefix? string
---@field endpoint? string the endpoint name of the matched rule
---@field status? integer
---@field since? integer only entries with a larger sequence number

---@class h1mock.JournalFindFilter: h1mock.JournalFilter
---@field limit? integer with since: the first N after it; without: the newest N

---One request the server answered.
---@class h1mock.JournalEntry
---@field seq integer sequence number, growing
---@field time string `"2026-11-23T10:00:00.123456Z"`
---@field remote string `"127.0.0.1:5555"`
---@field method string
---@field path string
---@field query string
---@field headers table<string, string> lower-case names, repeats joined with `", "`
---@field body string
---@field body_encoding "utf-8"|"base64"
---@field body_truncated boolean
---@field body_bytes integer the full length received
---@field status integer
---@field endpoint string? nil when no rule matched
---@field provision string
---@field proxied boolean --proxy answered it (no rule's path matched)
---@field fault "reset"|"empty"|"random"|"malformed_chunk"|false the fault() answered (false: none); status 0 when no status line went out
---@field calls h1mock.OutboundCall[] the http.request calls it made, in order (at most 64)
---@field duration_us integer

---One http.request call of a journal entry.
---@class h1mock.OutboundCall
---@field method string
---@field url string
---@field status integer? nil when the call failed
---@field duration_us integer
---@field error string? why it failed; nil when answered

---The requests the server received (a ring of --journal-size entries). A request is
---recorded after its response, so inside a view `journal.count{...} + 1` is the
---number of this call.
---@class h1mock.Journal
journal = {}

---How many entries match.
---@param filter? h1mock.JournalFilter
---@return integer
function journal.count(filter) end

---The matching entries, oldest first.
---@param filter? h1mock.JournalFindFilter
---@return h1mock.JournalEntry[]
function journal.find(filter) end

---------------------------------------------------------------------------
-- The sandbox's os: only these five functions exist in a provision.
---------------------------------------------------------------------------

---@class h1mock.os
os = {}

---@param t? {year: integer, month: integer, day: integer, hour?: integer, min?: integer, sec?: integer}
---@return integer
function os.time(t) end

---@return number
function os.clock() end

---@param format? string `"!%Y-%m-%dT%H:%M:%SZ"`; `"*t"` or `"!*t"` gives a table
---@param time? integer
---@return string|table
function os.date(format, time) end

---@param name string
---@return string?
function os.getenv(name) end

---@param t2 integer
---@param t1 integer
---@return number
function os.difftime(t2, t1) end

---------------------------------------------------------------------------
-- Lua 5.3 math functions that Debian's Lua 5.4 (built with LUA_COMPAT_5_3)
-- still has. They work in provisions but are gone from other Lua 5.4 builds.
---------------------------------------------------------------------------

---Deprecated: use `x ^ y`.
---@deprecated
---@param x number
---@param y number
---@return number
function math.pow(x, y) end

---Deprecated: use `math.atan(y, x)`.
---@deprecated
---@param y number
---@param x number
---@return number
function math.atan2(y, x) end

---Deprecated: use `(math.exp(x) + math.exp(-x)) / 2`.
---@deprecated
---@param x number
---@return number
function math.cosh(x) end

---Deprecated: use `(math.exp(x) - math.exp(-x)) / 2`.
---@deprecated
---@param x number
---@return number
function math.sinh(x) end

---Deprecated: use `(math.exp(2 * x) - 1) / (math.exp(2 * x) + 1)`.
---@deprecated
---@param x number
---@return number
function math.tanh(x) end

---@deprecated
---@param x number
---@return number m
---@return integer e
function math.frexp(x) end

---Deprecated: use `m * 2.0 ^ e`.
---@deprecated
---@param m number
---@param e integer
---@return number
function math.ldexp(m, e) end

---Deprecated: use `math.log(x, 10)`.
---@deprecated
---@param x number
---@return number
function math.log10(x) end
