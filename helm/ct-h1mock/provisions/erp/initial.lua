-- The ERP stand-in of ct-h1mock, served at start from the ConfigMap
-- erp-provision-config. files/ct-test.sh checks this answer.
function registerRules()
  app.get("/erp/v1/orders/<int:id>", function(req, id)
    return {id = id, status = "shipped"}
  end)
end
