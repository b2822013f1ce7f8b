-- Argo CD health of an Estuary ComputePool (estuary.dev/v1alpha1).
-- A Ready condition with status False -> Degraded (its reason and message); status.nodes present
-- -> Healthy (nodes, healthy and free accelerators); no status yet -> Progressing.
local hs = {}
local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for Estuary to observe the pool"
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
      return hs
    end
  end
end
if status.nodes ~= nil then
  hs.status = "Healthy"
  hs.message = tostring(status.nodes) .. " nodes, " .. tostring(status.healthy or 0) .. "/" ..
    tostring(status.capacity or 0) .. " accelerators healthy, " .. tostring(status.free or 0) .. " free"
  if status.nodes == 0 then
    hs.message = hs.message .. " (no ready node matches spec.nodeSelector)"
  end
  return hs
end
hs.status = "Progressing"
hs.message = "Waiting for Estuary to count the pool's nodes"
return hs
