"""What the operator knows of the cluster: the watch-fed cache, and the pure functions that turn
its objects into the core's data (`codec`) and one step's view of it (`snapshot`)."""
