-- Resume a suspended AIJob: it goes back into the queue.
obj.spec.suspend = false
return obj
