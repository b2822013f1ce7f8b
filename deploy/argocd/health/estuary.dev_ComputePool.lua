-- Argo CD health of an Estuary ComputePool (estuary.dev/v1alpha1).
-- Until Estuary has observed the current spec (status.observedGeneration < metadata.generation)
-- -> Progressing; a Ready condition with status False -> Degraded (its reason and message: no
-- node matches, its nodes count in an older pool, an unknown vendor, an invalid spec); Ready True
-- -> Healthy (nodes, healthy and free accelerators; a selector overlap is named); no status yet
-- -> Progressing.
local hs = {}
local status = obj.status
if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for Estuary to observe the pool"
  return hs
end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for Estuary to observe generation " .. tostring(generation)
  return hs
end
local overlap = nil
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
    if condition.type == "Overlap" and condition.status == "True" then
      overlap = condition.message
    end
  end
end
if status.nodes ~= nil then
  hs.status = "Healthy"
  hs.message = tostring(status.nodes) .. " nodes, " .. tostring(status.healthy or 0) .. "/" ..
    tostring(status.capacity or 0) .. " accelerators healthy, " .. tostring(status.free or 0) .. " free"
  if overlap ~= nil then
    hs.message = hs.message .. " (selector overlap: " .. overlap .. ")"
  end
  return hs
end
hs.status = "Progressing"
hs.message = "Waiting for Estuary to count the pool's nodes"
return hs
