-- Argo CD health of an Estuary FederationLink (estuary.dev/v1alpha1).
-- A Ready condition with status False -> Degraded with its reason and message (the partner is
-- unreachable, refuses the credentials, the link lies outside Estuary's namespace or does not
-- parse); status.reachable true -> Healthy; no status yet -> Progressing.
local hs = {}
local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the first heartbeat to the partner cluster"
  return hs
end
if status.conditions ~= nil then
  for _, condition in ipairs(status.conditions) do
    if condition.type == "Ready" and condition.status == "False" then
      hs.status = "Degraded"
      hs.message = condition.reason or "NotReady"
      if condition.message ~= nil and condition.message ~= "" then
        hs.message = hs.message .. ": " .. condition.message
      end
      if status.lastHeartbeat ~= nil then
        hs.message = hs.message .. " (last heartbeat " .. status.lastHeartbeat .. ")"
      end
      return hs
    end
  end
end
if status.reachable == true then
  hs.status = "Healthy"
  hs.message = "Partner reachable"
  if status.lastHeartbeat ~= nil then
    hs.message = hs.message .. ", last heartbeat " .. status.lastHeartbeat
  end
  return hs
end
if status.reachable == false then
  hs.status = "Degraded"
  hs.message = "Partner unreachable"
  return hs
end
hs.status = "Progressing"
hs.message = "Waiting for the first heartbeat to the partner cluster"
return hs
