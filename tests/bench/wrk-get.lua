-- tests/bench/wrk-get.lua - wrk script of tests/bench/rest.sh, "get-by-id":
-- GET <URL path>/<id> with an id drawn at random from a file of ids, one a line.
--   wrk ... -s tests/bench/wrk-get.lua http://HOST:PORT/api/items -- IDS_FILE
-- The requests are formatted once in init() so that the client spends its
-- time sending, not building strings.
local requests = {}
local count = 0

function init(args)
    local file = args[1]
    if not file then
        error("wrk-get.lua: pass the ids file after --")
    end
    local f = assert(io.open(file, "r"))
    local base = wrk.path:gsub("/+$", "")
    for id in f:lines() do
        if id ~= "" then
            count = count + 1
            requests[count] = wrk.format("GET", base .. "/" .. id)
        end
    end
    f:close()
    if count == 0 then
        error("wrk-get.lua: no id in " .. file)
    end
    math.randomseed(os.time())
end

function request()
    return requests[math.random(count)]
end
