"""The controller: turns the core's decisions and the pods' progress into API writes."""
