-- Suspend an AIJob: Estuary releases its whole gang (after the preemption grace period).
obj.spec.suspend = true
return obj
