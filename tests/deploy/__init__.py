"""The service deployed as operators deploy it: behind shared caches."""
