-- Argo CD resource actions of an Estuary AIJob: suspend (spec.suspend = true: the gang is
-- released and holds nothing) and resume (spec.suspend = false: back in the queue). A finished
-- job (Succeeded, Failed) offers neither.
local actions = {}
actions["suspend"] = {["disabled"] = true}
actions["resume"] = {["disabled"] = true}
local phase = obj.status and obj.status.phase
if phase == "Succeeded" or phase == "Failed" then
  return actions
end
if obj.spec ~= nil and obj.spec.suspend == true then
  actions["resume"]["disabled"] = false
else
  actions["suspend"]["disabled"] = false
end
return actions
