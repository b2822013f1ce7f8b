-- Argo CD health of an Estuary FederationLink (estuary.dev/v1alpha1).
-- status.reachable true -> Healthy; false -> Degraded with the Reachable condition's message;
-- no status yet -> Progressing.
local hs = {}
local status = obj.status
if status == nil or status.reachable == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the first heartbeat to the partner cluster"
  return hs
end
if status.reachable == true then
  hs.status = "Healthy"
  hs.message = "Partner reachable"
  if status.lastHeartbeat ~= nil then
    hs.message = hs.message .. ", last heartbeat " .. status.lastHeartbeat
  end
  return hs
end
hs.status = "Degraded"
hs.message = "Partner unreachable"
if status.conditions ~= nil then
  for _, condition in ipairs(status.conditions) do
    if condition.type == "Reachable" then
      if condition.message ~= nil and condition.message ~= "" then
        hs.message = condition.message
      elseif condition.reason ~= nil then
        hs.message = "Partner unreachable: " .. condition.reason
      end
    end
  end
end
if status.lastHeartbeat ~= nil then
  hs.message = hs.message .. " (last heartbeat " .. status.lastHeartbeat .. ")"
end
return hs
