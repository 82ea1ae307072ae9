-- tests/bench/wrk-upload.lua - wrk script of tests/bench/matrix.sh: every
-- request POSTs the same body of SIZE bytes (default 1 MiB) to the URL.
--   wrk ... -s tests/bench/wrk-upload.lua http://HOST:PORT/upload -- [SIZE]
local req

function init(args)
    local size = tonumber(args[1] or "1048576")
    if not size or size < 0 then
        error("wrk-upload.lua: the size after -- must be a number of bytes")
    end
    req = wrk.format("POST", wrk.path, {["Content-Type"] = "application/octet-stream"},
                     string.rep("a", size))
end

function request()
    return req
end
