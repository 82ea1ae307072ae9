-- rest-api.lua: the built-in default, spelled out, to copy and extend.
--
-- A zero-code REST API under /api (POST /api/<resource> creates a document
-- with a UUID "_id"; GET, PUT, PATCH and DELETE /api/<resource>/<id>; lists
-- take json-server's filters, _sort, _page/_limit and q), a health report,
-- and a homepage that shows both. Documents live in the shared store, so
-- they survive swapping to another provision.
--
-- Try it:
--   curl -X POST localhost:8000/api/users -H 'Content-Type: application/json' -d '{"name":"ada"}'
--   curl 'localhost:8000/api/users?name=ada&_sort=name&_page=1&_limit=10'
--   curl localhost:8000/health

function registerRules()
  rest.mount("/api")
  app.get("/health", rest.health)
  app.get("/", rest.home("/api"))
  -- Add your own rules here; they can read and write the same data:
  --   app.get("/api/users/<id>/avatar", function(req, id) ... store.get("users", id) ... end)
end
