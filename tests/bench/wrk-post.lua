-- tests/bench/wrk-post.lua - wrk script of tests/bench/rest.sh, "creates":
-- every request POSTs the same small JSON object to the URL given to wrk
-- (http://HOST:PORT/api/items). Static request: wrk builds it once.
wrk.method = "POST"
wrk.body = '{"name":"bench","n":1}'
wrk.headers["Content-Type"] = "application/json"
