-- Argo CD health of an Estuary AIJob (estuary.dev/v1alpha1), with the semantics of a batch/v1 Job:
-- a job that has not finished is Progressing (so a later sync wave waits for it to succeed),
-- Succeeded -> Healthy, Failed -> Degraded (with the cause), Suspended -> Suspended. A job Estuary
-- holds out of the queue until a person acts (the API server refused its pods, or a pod that is
-- not its own has a worker's name) -> Degraded with what to do. Until Estuary has observed the
-- current spec (status.observedGeneration < metadata.generation) -> Progressing.
local hs = {}
local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for Estuary to queue the job"
  return hs
end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for Estuary to observe generation " .. tostring(generation)
  return hs
end
local phase = status.phase
local detail = status.message or status.reason or ""
-- Where it runs: "nvidia/H800, pool h800" (plus the partner cluster when it ran out).
local parts = {}
local placement = status.placement or {}
if status.accelerator ~= nil and status.accelerator ~= "" then
  table.insert(parts, status.accelerator)
elseif placement.vendor ~= nil and placement.model ~= nil then
  table.insert(parts, placement.vendor .. "/" .. placement.model)
end
if placement.pool ~= nil then table.insert(parts, "pool " .. placement.pool) end
if placement.cluster ~= nil and placement.cluster ~= "local" then
  table.insert(parts, "cluster " .. placement.cluster)
end
local where = table.concat(parts, ", ")
local needs_action = {InvalidPodTemplate = true, NameConflict = true, PodForbidden = true}
if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = "Succeeded"
  if detail ~= "" then hs.message = "Succeeded: " .. detail end
elseif phase == "Running" then
  hs.status = "Progressing"
  hs.message = "Running"
  if where ~= "" then hs.message = "Running (" .. where .. ")" end
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = "Failed"
  if detail ~= "" then hs.message = "Failed: " .. detail end
elseif phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = "Suspended (spec.suspend is true)"
elseif phase == "Queued" and needs_action[status.reason] then
  hs.status = "Degraded"
  hs.message = status.reason .. ": " .. (status.message or "")
elseif phase == "Queued" then
  hs.status = "Progressing"
  hs.message = "Queued"
  if status.queuePosition ~= nil then
    hs.message = hs.message .. " at position " .. tostring(status.queuePosition)
  end
  if detail ~= "" then hs.message = hs.message .. ": " .. detail end
elseif phase == "Admitted" then
  hs.status = "Progressing"
  hs.message = "Admitted, starting workers"
  if where ~= "" then hs.message = hs.message .. " (" .. where .. ")" end
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(phase)
end
return hs
