-- The payment gateway stand-in of ct-h1mock, served at start from the
-- ConfigMap payments-provision-config. files/ct-test.sh checks this answer.
function registerRules()
  app.get("/payments/v1/health", function()
    return {status = "up"}
  end)
  app.post("/payments/v1/charges", function(req)
    return {id = store.uuid(), amount = (req.json or {}).amount, status = "accepted"}, 201
  end)
end
