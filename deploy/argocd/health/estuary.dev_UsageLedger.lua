-- Argo CD health of an Estuary UsageLedger (estuary.dev/v1alpha1). The operator creates and keeps
-- ledgers (a tenant's accelerator use in one month); Argo CD only shows them when asked to. A ledger
-- is a record, so it is always Healthy; the message gives its totals.
local hs = {}
hs.status = "Healthy"
local status = obj.status or {}
local records = status.records or {}
hs.message = tostring(#records) .. " runs, " .. tostring(status.acceleratorHours or 0) ..
  " accelerator-hours, " .. tostring(status.pflopsHours or 0) .. " PFLOPS-hours"
return hs
