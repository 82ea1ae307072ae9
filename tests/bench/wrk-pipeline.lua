-- tests/bench/wrk-pipeline.lua - wrk script of tests/bench/matrix.sh: each
-- write carries DEPTH GETs of the URL's path (default 16), so that a
-- connection always has that many requests in flight; wrk counts every
-- answer as a request.
--   wrk ... -s tests/bench/wrk-pipeline.lua http://HOST:PORT/path -- [DEPTH]
local batch

function init(args)
    local depth = tonumber(args[1] or "16")
    if not depth or depth < 1 then
        error("wrk-pipeline.lua: the depth after -- must be a positive number")
    end
    local one = wrk.format("GET", wrk.path)
    batch = string.rep(one, depth)
end

function request()
    return batch
end
