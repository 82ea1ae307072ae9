-- healthz.lua: liveness and readiness answers on the traffic port.
--
-- What it shows:
--   * the smallest provision that is still useful: two rules, one view;
--   * one view serving several rules (request.endpoint tells them apart);
--   * a GET rule also answers HEAD, which is what some probes send.
--
-- A Kubernetes probe or a docker-compose healthcheck can point at the port
-- the system under test talks to (the admin port has its own GET /healthz):
--   livenessProbe:  {httpGet: {path: /healthz, port: 8000}}
--   readinessProbe: {httpGet: {path: /readyz,  port: 8000}}
--   healthcheck:    {test: ["CMD", "curl", "-fs", "http://localhost:8000/healthz"]}
-- Copy the two app.get lines into your own provision to keep the probes
-- green whatever it mocks.
--
-- Try it:
--   curl -i localhost:8000/healthz    # 200 {"check":"healthz","status":"ok"}
--   curl -I localhost:8000/readyz     # 200, headers only

local function healthy(req)
  return {status = "ok", check = req.endpoint}, 200, {["Cache-Control"] = "no-store"}
end

function registerRules()
  app.add_url_rule("/healthz", "healthz", healthy)
  app.add_url_rule("/readyz", "readyz", healthy)
end
